#pragma once
// Progress on stderr. On a terminal (isatty(stderr)): one bar redrawn in place, with the count, the rate and
// the time left; a failure is printed above it. Otherwise (a log file, a Slurm job's output): one plain
// line per file, which greps and tails well. --quiet keeps only the failures.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace vit3d_infer {

// "1:05", "12:00:03".
inline std::string clock_text(double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) return "?";
    const long s = static_cast<long>(seconds + 0.5);
    char buffer[32];
    if (s >= 3600)
        std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buffer, sizeof buffer, "%ld:%02ld", s / 60, s % 60);
    return buffer;
}

class Progress {
  public:
    using Clock = std::chrono::steady_clock;

    // `total`: the files this run will read (those not skipped as existing).
    Progress(std::size_t total, bool quiet)
        : total_(total), quiet_(quiet), terminal_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}

    // One file finished: written ("done") or failed (with the reason).
    void done(const std::string& input, const std::string& detail) {
        ++count_;
        if (quiet_) return;
        if (terminal_)
            draw(input);
        else
            std::fprintf(stderr, "vit3d-infer: [%zu/%zu] %s: %s\n", count_, total_, input.c_str(),
                         detail.c_str());
    }
    void failed(const std::string& input, const std::string& reason) {
        ++count_;
        clear();
        std::fprintf(stderr, "vit3d-infer: %s: failed: %s\n", input.c_str(), reason.c_str());
        if (terminal_ && !quiet_) draw(input);
    }
    // A line that is neither progress nor failure (skips, notes), kept off the bar.
    void note(const std::string& line) {
        if (quiet_) return;
        clear();
        std::fprintf(stderr, "vit3d-infer: %s\n", line.c_str());
        if (terminal_ && count_ > 0 && count_ < total_) draw("");
    }
    // Leaves the terminal on a fresh line.
    void finish() { clear(); }

  private:
    void clear() {
        if (terminal_ && drawn_) {
            std::fputs("\r\x1b[K", stderr);
            drawn_ = false;
        }
    }
    void draw(const std::string& current) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
        const double rate = elapsed > 0 ? static_cast<double>(count_) / elapsed : 0.0;
        const double left = rate > 0 ? static_cast<double>(total_ - count_) / rate : -1.0;
        constexpr int width = 30;
        const int filled = total_ == 0 ? width : static_cast<int>(width * count_ / total_);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        std::string name = current;
        if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
        std::fprintf(stderr, "\r\x1b[K[%s] %zu/%zu  %.2f files/s  ETA %s  %s", bar.c_str(), count_, total_,
                     rate, count_ == total_ ? "0:00" : clock_text(left).c_str(), name.c_str());
        std::fflush(stderr);
        drawn_ = true;
    }

    std::size_t total_;
    std::size_t count_ = 0;
    bool quiet_;
    bool terminal_;
    bool drawn_ = false;
    Clock::time_point start_;
};

}  // namespace vit3d_infer
