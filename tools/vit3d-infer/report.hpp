#pragma once
// What a run did, gathered as it goes, and printed at the end: as text on stdout, or with --json as one JSON
// object (schema in docs/vit3d-infer.md). The same facts either way.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/version.hpp"

namespace vit3d_infer {

enum class FileStatus { not_run, done, skipped, failed };  // not_run: interrupted before its turn

constexpr auto enum_names(FileStatus) {
    return vit3d::enum_table<FileStatus>({{FileStatus::not_run, "not_run"},
                                          {FileStatus::done, "done"},
                                          {FileStatus::skipped, "skipped"},
                                          {FileStatus::failed, "failed"}});
}

inline const char* status_name(FileStatus s) { return vit3d::enum_name(s); }

struct FileResult {
    std::string input;
    std::string output;
    FileStatus status = FileStatus::not_run;
    std::string error;        // failed: why; skipped: why
    vit3d::Shape read_shape;  // the array in the file
    std::string read_dtype;
    vit3d::Shape input_shape;   // what forward() got for this file, [B, C, spatial...]
    vit3d::Shape output_shape;  // what was written
    std::string input_sha256;   // of the input file, when it was read (done) or checked (skipped)
    std::string output_sha256;  // of the output file written (done) or kept (skipped)
    std::string record;         // the output's record (done, skipped)
    double read_seconds = 0, forward_seconds = 0, write_seconds = 0;
};

struct ModelFacts {
    std::string path, family, kind, layout;
    vit3d::Index parameters = 0;
    vit3d::Shape input_shape;  // [C, spatial...]
    vit3d::Shape grid;         // patches along each spatial axis
    vit3d::Index patches = 0, tokens = 0;
    std::vector<std::string> outputs;
    std::uint64_t bytes = 0;  // of the weights file
    std::string sha256;       // of the weights file, as sha256sum prints it
};

struct RunReport {
    ModelFacts model;
    std::string output_kind;
    std::string precision;          // of the linear layers
    nlohmann::json preprocess;      // the preprocessing in force
    std::size_t inputs_listed = 0;  // before sharding
    std::optional<std::pair<vit3d::Index, vit3d::Index>> shard;
    vit3d::Index batch_size = 1;
    int threads = 1;
    std::vector<FileResult> files;
    // hash: the weights file's SHA-256, and the existing outputs' and the inputs' checked or recorded
    double load_seconds = 0, hash_seconds = 0, read_seconds = 0, forward_seconds = 0, write_seconds = 0,
           total_seconds = 0;
    bool interrupted = false;

    std::size_t count(FileStatus s) const {
        std::size_t n = 0;
        for (const FileResult& f : files) n += f.status == s ? 1 : 0;
        return n;
    }
};

// The process's peak resident memory in bytes (VmHWM of /proc/self/status; 0 where there is none).
inline long long peak_memory_bytes() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // in kB
    return 0;
}

inline nlohmann::json shape_json(const vit3d::Shape& s) {
    return nlohmann::json(std::vector<vit3d::Index>(s));
}

inline nlohmann::json text_or_null(const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

inline nlohmann::ordered_json report_json(const RunReport& r, int exit_code) {
    nlohmann::ordered_json j;
    j["tool"] = "vit3d-infer";
    j["version"] = VIT3D_VERSION_STRING;
    j["model"] = {{"path", r.model.path},
                  {"family", r.model.family},
                  {"kind", r.model.kind},
                  {"parameters", r.model.parameters},
                  {"layout", r.model.layout},
                  {"input_shape", shape_json(r.model.input_shape)},
                  {"grid", shape_json(r.model.grid)},
                  {"patches", r.model.patches},
                  {"tokens", r.model.tokens},
                  {"outputs", r.model.outputs},
                  {"bytes", r.model.bytes},
                  {"sha256", r.model.sha256}};
    j["output_kind"] = r.output_kind;
    j["precision"] = r.precision;
    j["preprocess"] = r.preprocess;
    j["batch_size"] = r.batch_size;
    j["threads"] = r.threads;
    j["shard"] = r.shard ? nlohmann::ordered_json{{"index", r.shard->first}, {"count", r.shard->second}}
                         : nlohmann::ordered_json(nullptr);
    j["inputs_listed"] = r.inputs_listed;
    j["summary"] = {{"done", r.count(FileStatus::done)},
                    {"skipped", r.count(FileStatus::skipped)},
                    {"failed", r.count(FileStatus::failed)},
                    {"not_run", r.count(FileStatus::not_run)},
                    {"interrupted", r.interrupted}};
    j["seconds"] = {{"load", r.load_seconds},       {"hash", r.hash_seconds},   {"read", r.read_seconds},
                    {"forward", r.forward_seconds}, {"write", r.write_seconds}, {"total", r.total_seconds}};
    j["peak_memory_bytes"] = peak_memory_bytes();
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const FileResult& f : r.files) {
        nlohmann::ordered_json e;
        e["input"] = f.input;
        e["output"] = f.output;
        e["status"] = status_name(f.status);
        e["error"] = f.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(f.error);
        e["read_shape"] = f.read_shape.empty() ? nlohmann::json(nullptr) : shape_json(f.read_shape);
        e["read_dtype"] = f.read_dtype.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.read_dtype);
        e["input_shape"] = f.input_shape.empty() ? nlohmann::json(nullptr) : shape_json(f.input_shape);
        e["output_shape"] = f.output_shape.empty() ? nlohmann::json(nullptr) : shape_json(f.output_shape);
        e["record"] = text_or_null(f.record);
        e["input_sha256"] = text_or_null(f.input_sha256);
        e["output_sha256"] = text_or_null(f.output_sha256);
        e["seconds"] = {{"read", f.read_seconds}, {"forward", f.forward_seconds}, {"write", f.write_seconds}};
        files.push_back(std::move(e));
    }
    j["files"] = std::move(files);
    j["exit_code"] = exit_code;
    return j;
}

inline std::string thousands(long long n) {
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
}

inline void print_report_text(const RunReport& r, std::FILE* out) {
    const ModelFacts& m = r.model;
    std::string grid;
    for (vit3d::Index g : m.grid) grid += vit3d::message(grid.empty() ? "" : "x", g);
    std::fprintf(out, "model:   %s: %s %s, %s parameters, input %s (layout %s), %lld tokens (%s patches%s)\n",
                 m.path.c_str(), m.family.c_str(), m.kind.c_str(), thousands(m.parameters).c_str(),
                 vit3d::shape_to_string(m.input_shape).c_str(), m.layout.c_str(),
                 static_cast<long long>(m.tokens), grid.c_str(),
                 m.tokens > m.patches ? " + class token" : "");
    std::fprintf(out, "weights: sha256 %s, %s bytes\n", m.sha256.c_str(),
                 thousands(static_cast<long long>(m.bytes)).c_str());
    std::fprintf(out, "output:  %s, precision %s, batch size %lld, %d thread(s)\n", r.output_kind.c_str(),
                 r.precision.c_str(), static_cast<long long>(r.batch_size), r.threads);
    // The first few files; a long run's every file is in its progress lines and in --json.
    constexpr std::size_t listed = 10;
    std::size_t shown = 0;
    for (const FileResult& f : r.files) {
        if (f.status != FileStatus::done || shown++ >= listed) continue;
        std::fprintf(out, "file:    %s %s %s -> input %s -> %s %s\n", f.input.c_str(), f.read_dtype.c_str(),
                     vit3d::shape_to_string(f.read_shape).c_str(),
                     vit3d::shape_to_string(f.input_shape).c_str(),
                     vit3d::shape_to_string(f.output_shape).c_str(), f.output.c_str());
    }
    if (shown > listed) std::fprintf(out, "file:    ... and %zu more\n", shown - listed);
    std::string shard;
    if (r.shard) shard = vit3d::message(" (shard ", r.shard->first, "/", r.shard->second, ")");
    std::fprintf(out, "inputs:  %zu of %zu listed%s: %zu done, %zu skipped (output exists), %zu failed%s\n",
                 r.files.size(), r.inputs_listed, shard.c_str(), r.count(FileStatus::done),
                 r.count(FileStatus::skipped), r.count(FileStatus::failed),
                 r.interrupted ? ", interrupted" : "");
    std::fprintf(
        out,
        "time:    load %.3f s, hash %.3f s, read+preprocess %.3f s, forward %.3f s, write %.3f s, total "
        "%.3f s\n",
        r.load_seconds, r.hash_seconds, r.read_seconds, r.forward_seconds, r.write_seconds, r.total_seconds);
    std::fprintf(out, "memory:  peak %.1f MiB (VmHWM)\n",
                 static_cast<double>(peak_memory_bytes()) / (1024.0 * 1024.0));
}

}  // namespace vit3d_infer
