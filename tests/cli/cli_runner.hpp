#pragma once
// Runs the built vit3d-infer (VIT3D_INFER_PATH, from $<TARGET_FILE:vit3d-infer>) and captures its exit code,
// stdout and stderr; gives each test a fresh scratch folder; and the checks and inputs several test files
// use.

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vit3d/formats/npy.hpp"

extern char** environ;

namespace vit3d_cli_test {

namespace fs = std::filesystem;

struct Result {
    int code = -1;    // exit code, or 128 + signal
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs argv[0] with argv (no shell), stdin closed.
inline Result run_process(const std::vector<std::string>& argv) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
        posix_spawn_file_actions_addclose(&actions, fd);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        throw std::runtime_error("posix_spawn " + argv[0] + " failed: " + std::to_string(rc));
    }
    Result r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    char buffer[4096];
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

// vit3d-infer with these arguments.
inline Result infer(std::vector<std::string> args) {
    args.insert(args.begin(), VIT3D_INFER_PATH);
    return run_process(args);
}

// A shell command line, for the tests that need ulimit or trap.
inline Result shell(const std::string& command) { return run_process({"/bin/sh", "-c", command}); }

inline std::string infer_path() { return VIT3D_INFER_PATH; }

// Fixture paths, normalised as vit3d-infer normalises its inputs' paths (so that messages can be compared).
inline std::string fixture(const std::string& relative) {
    return fs::path(std::string(VIT3D_TEST_FIXTURE_DIR) + "/" + relative).lexically_normal().string();
}
inline std::string model(const std::string& name) { return fixture("roundtrip/" + name + ".safetensors"); }

inline std::size_t line_count(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n' ? 1 : 0;
    return n + (!s.empty() && s.back() != '\n' ? 1 : 0);
}

inline std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

// Every file name in a folder (hidden ones included), sorted.
inline std::vector<std::string> names_in(const fs::path& folder) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// A one-line error: stderr is that line alone.
inline void expect_one_line_error(const Result& r, int code, const std::string& text) {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("vit3d-infer: error: "));
    EXPECT_THAT(r.err, ::testing::HasSubstr(text));
}

// One random [3, 32, 32] float32 sample per stem, as <folder>/<stem>.npy (the timm fixture's input).
inline void write_inputs(const fs::path& folder, const std::vector<std::string>& stems) {
    fs::create_directories(folder);
    std::uint64_t seed = 100;
    for (const std::string& s : stems)
        vit3d::io::write_npy((folder / (s + ".npy")).string(),
                             vit3d::Tensor<float>::randn({3, 32, 32}, ++seed));
}

// What a run leaves in its output folder for these outputs: each output and its record, sorted.
inline std::vector<std::string> with_records(const std::vector<std::string>& outputs) {
    std::vector<std::string> names;
    for (const std::string& o : outputs) {
        names.push_back(o);
        names.push_back(o + ".vit3d.json");
    }
    std::sort(names.begin(), names.end());
    return names;
}

// A fresh folder per test, removed afterwards.
class CliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "vit3d-cli-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    fs::path dir_;
};

}  // namespace vit3d_cli_test
