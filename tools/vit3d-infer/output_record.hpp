#pragma once
// What wrote each output: a record next to it, <output>.vit3d.json (out/a.npy -> out/a.npy.vit3d.json), and
// the rule that decides from it whether an output that exists stands for the one this run would write.
//
// A record holds what the output's numbers depend on: the weights file's SHA-256, the output kind, the
// precision of the linear layers, the preprocessing in force (the weights file's after the command line's
// overrides, and whether .npy inputs went through it) and the input file's SHA-256; and the size and SHA-256
// of the output it describes, so that an output replaced after it was written (by hand, by another program)
// is not taken for the one recorded. An existing output is skipped only when its record describes it and
// names this run's weights, kind, preprocessing and input; any other existing output stops the run before it
// computes anything.
//
// One record per output rather than one per folder: the shards of a run write into one folder at once, and
// each output, so each record, is written by one process only.
//
// The order of writing keeps a run killed at any moment from leaving an output a rerun would wrongly trust:
// the output's bytes go to its temporary file, which is closed (so every write error shows before anything
// is renamed); then the record is written through a temporary file of its own and renamed; then the
// output's temporary file is renamed onto its name. A kill before the record leaves no output (a hidden
// temporary file at most); a kill after it leaves a record whose output is missing, which a rerun computes,
// or, under --overwrite, an older output the record does not describe, which a rerun refuses like any other.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "input_listing.hpp"
#include "options.hpp"
#include "sha256.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/atomic_file_writer.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/version.hpp"

namespace vit3d_infer {

using vit3d::message;

inline constexpr const char* record_name = "vit3d-infer output";
inline constexpr int record_version = 1;

inline std::string record_path(const std::string& output) { return output + ".vit3d.json"; }

// What this run writes into every record, and what it compares with the records of existing outputs.
struct RunIdentity {
    std::string weights_path;  // absolute
    FileDigest weights;
    std::string output_kind;
    std::string precision;      // of the linear layers: "f32", "bf16" or "int8"
    nlohmann::json preprocess;  // the preprocessing in force, and npy_values
};

// The precision a record names. Records written before vit3d-infer had --precision have none: they were
// computed in f32.
inline constexpr const char* precision_before_records_had_one = "f32";

// One output's provenance as its record holds it: the digests the report shows.
struct OutputProvenance {
    std::string input_sha256;
    std::string output_sha256;
};

inline std::string absolute_path(const std::string& path) {
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    return (ec ? fs::path(path) : absolute).lexically_normal().string();
}

inline nlohmann::ordered_json record_json(const RunIdentity& run, const std::string& input,
                                          const FileDigest& input_digest, const std::string& output,
                                          const FileDigest& output_digest, const vit3d::Shape& output_shape) {
    nlohmann::ordered_json j;
    j["record"] = record_name;
    j["record_version"] = record_version;
    j["vit3d_version"] = VIT3D_VERSION_STRING;
    j["weights"] = {{"path", run.weights_path}, {"bytes", run.weights.bytes}, {"sha256", run.weights.sha256}};
    j["output_kind"] = run.output_kind;
    j["precision"] = run.precision;
    j["preprocess"] = run.preprocess;
    j["input"] = {
        {"path", absolute_path(input)}, {"bytes", input_digest.bytes}, {"sha256", input_digest.sha256}};
    j["output"] = {{"file", fs::path(output).filename().string()},
                   {"bytes", output_digest.bytes},
                   {"sha256", output_digest.sha256},
                   {"shape", std::vector<vit3d::Index>(output_shape)}};
    return j;
}

// Writes `y` at `output` and its record, in the order the top of this file gives; returns the output's
// digest. Throws (leaving `output` as it was) when either cannot be written.
inline FileDigest write_output_and_record(const std::string& output, const vit3d::Tensor<float>& y,
                                          const RunIdentity& run, const std::string& input,
                                          const FileDigest& input_digest) {
    const std::vector<std::uint8_t> bytes = vit3d::io::serialize_npy(y);
    const FileDigest digest{bytes.size(), sha256_hex(bytes.data(), bytes.size())};
    vit3d::io::AtomicFileWriter output_file(output, message("output ", quote(output), ": "));
    output_file.write(bytes.data(), bytes.size());
    output_file.close();

    const std::string record = record_path(output);
    const std::string text = record_json(run, input, input_digest, output, digest, y.shape()).dump(2) + "\n";
    vit3d::io::AtomicFileWriter record_file(record, message("record ", quote(record), ": "));
    record_file.write(text.data(), text.size());
    record_file.commit();
    try {
        output_file.commit();
    } catch (...) {
        std::error_code ignored;
        fs::remove(record, ignored);  // it would describe an output that is not there
        throw;
    }
    return digest;
}

namespace detail {

inline std::string short_hash(const std::string& sha256) { return sha256.substr(0, 12); }

// A record's field at a dotted path ("weights.sha256"), of the expected type.
inline const nlohmann::json& record_field(const nlohmann::json& record, const std::string& dotted,
                                          nlohmann::json::value_t type) {
    const nlohmann::json* at = &record;
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = dotted.find('.', start);
        const std::string key =
            dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        const auto it = at->is_object() ? at->find(key) : at->end();
        if (!at->is_object() || it == at->end())
            throw std::runtime_error(message("no field \"", dotted, "\""));
        at = &*it;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    const bool fits = at->type() == type || (type == nlohmann::json::value_t::number_unsigned &&
                                             at->is_number_integer() && at->get<std::int64_t>() >= 0);
    if (!fits) throw std::runtime_error(message("field \"", dotted, "\" is ", at->dump()));
    return *at;
}

inline std::string record_string(const nlohmann::json& record, const std::string& dotted) {
    return record_field(record, dotted, nlohmann::json::value_t::string).get<std::string>();
}

// A record is a few hundred bytes; reading stops here, so that a large file of that name is refused as not
// being JSON rather than read whole.
inline constexpr std::uint64_t max_record_bytes = std::uint64_t(1) << 20;

// The record of `output`, checked to be one this vit3d-infer reads; usage_error when it is missing or is not.
inline nlohmann::json read_record(const std::string& output) {
    const std::string record = record_path(output);
    const std::string rewrite = message("; use --overwrite to rewrite ", quote(output));
    std::error_code ec;
    if (!fs::exists(record, ec))
        throw usage_error(message(
            quote(output), " has no record of what wrote it (no ", quote(record),
            "): written by hand, by another program or by a vit3d-infer from before records", rewrite));
    try {
        const std::vector<std::uint8_t> bytes = vit3d::detail::read_file_bytes(record, "", max_record_bytes);
        const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
        if (record_string(j, "record") != record_name)
            throw std::runtime_error(message("field \"record\" is ", j["record"].dump()));
        const auto version = record_field(j, "record_version", nlohmann::json::value_t::number_unsigned);
        if (version.get<std::uint64_t>() != record_version)
            throw std::runtime_error(
                message("record_version ", version.dump(), "; this vit3d-infer reads ", record_version));
        for (const char* field : {"weights.sha256", "output_kind", "input.sha256", "output.sha256"})
            record_string(j, field);
        record_field(j, "output.bytes", nlohmann::json::value_t::number_unsigned);
        record_field(j, "preprocess", nlohmann::json::value_t::object);
        return j;
    } catch (const std::exception& e) {
        throw usage_error(
            message(quote(record), " is not a record this vit3d-infer reads (", e.what(), ")", rewrite));
    }
}

// The first field of the preprocessing that differs, as "name <recorded>, this run <ours>".
inline std::string preprocessing_difference(const nlohmann::json& recorded, const nlohmann::json& ours) {
    std::vector<std::string> keys;
    for (const auto& item : recorded.items()) keys.push_back(item.key());
    for (const auto& item : ours.items())
        if (!recorded.contains(item.key())) keys.push_back(item.key());
    for (const std::string& key : keys) {
        const nlohmann::json a = recorded.contains(key) ? recorded[key] : nlohmann::json("(absent)");
        const nlohmann::json b = ours.contains(key) ? ours[key] : nlohmann::json("(absent)");
        if (a != b) return message(key, " ", a.dump(), ", this run ", b.dump());
    }
    return "";
}

}  // namespace detail

// Whether the output that exists at `output` stands for what this run would write from `input`: nullopt
// when there is none (or `input` cannot be read to tell: it is computed, and fails as a bad input does);
// its provenance when its record describes it and names this run's weights, kind, preprocessing and
// input; otherwise usage_error naming the output and the first difference.
inline std::optional<OutputProvenance> existing_output(const std::string& output, const std::string& input,
                                                       const RunIdentity& run) {
    std::error_code ec;
    const fs::file_status status = fs::status(output, ec);
    if (status.type() == fs::file_type::not_found) return std::nullopt;
    const std::string rewrite = "; use --overwrite to rewrite it";
    if (!fs::is_regular_file(status))
        throw usage_error(
            message(quote(output), " exists and is not a file; remove it or choose another --output"));
    const nlohmann::json record = detail::read_record(output);

    const std::uint64_t recorded_bytes = record["output"]["bytes"].get<std::uint64_t>();
    const std::string recorded_sha256 = record["output"]["sha256"].get<std::string>();
    const FileDigest actual = [&] {
        try {
            return sha256_of_file(output);
        } catch (const std::exception& e) {
            throw usage_error(
                message(quote(output), ": cannot read it to check it against its record: ", e.what()));
        }
    }();
    if (actual.bytes != recorded_bytes || actual.sha256 != recorded_sha256)
        throw usage_error(message(
            quote(output), " is not the file its record describes (",
            actual.bytes != recorded_bytes ? message(actual.bytes, " bytes, the record's ", recorded_bytes)
                                           : message("sha256 ", detail::short_hash(actual.sha256),
                                                     ", the record's ", detail::short_hash(recorded_sha256)),
            "): changed since vit3d-infer wrote it, or a run with --overwrite stopped before replacing it",
            rewrite));

    const std::string weights = record["weights"]["sha256"].get<std::string>();
    if (weights != run.weights.sha256) {
        const auto path = record["weights"].find("path");
        const std::string recorded_path = path != record["weights"].end() && path->is_string()
                                              ? message(" ", quote(path->get<std::string>()))
                                              : "";
        throw usage_error(message(quote(output), " was written by another model (weights sha256 ",
                                  detail::short_hash(weights), recorded_path, ", this run ",
                                  detail::short_hash(run.weights.sha256), " ", quote(run.weights_path), ")",
                                  rewrite));
    }
    const std::string kind = record["output_kind"].get<std::string>();
    if (kind != run.output_kind)
        throw usage_error(message(quote(output), " holds another output kind (", kind, ", this run ",
                                  run.output_kind, ")", rewrite));
    const auto precision = record.find("precision");
    const std::string recorded_precision = precision == record.end()
                                               ? std::string(precision_before_records_had_one)
                                           : precision->is_string() ? precision->get<std::string>()
                                                                    : precision->dump();
    if (recorded_precision != run.precision)
        throw usage_error(message(quote(output), " was computed in another precision (", recorded_precision,
                                  ", this run ", run.precision, ")", rewrite));
    if (record["preprocess"] != run.preprocess)
        throw usage_error(message(quote(output), " was written with other preprocessing (",
                                  detail::preprocessing_difference(record["preprocess"], run.preprocess), ")",
                                  rewrite));

    FileDigest input_digest;
    try {
        input_digest = sha256_of_file(input);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    const std::string recorded_input = record["input"]["sha256"].get<std::string>();
    if (input_digest.sha256 != recorded_input) {
        const auto path = record["input"].find("path");
        const std::string recorded_path = path != record["input"].end() && path->is_string()
                                              ? message(" of ", quote(path->get<std::string>()))
                                              : "";
        throw usage_error(message(quote(output), " was written from another input (sha256 ",
                                  detail::short_hash(recorded_input), recorded_path, ", this run's ",
                                  quote(input), " has sha256 ", detail::short_hash(input_digest.sha256), ")",
                                  rewrite));
    }
    return OutputProvenance{input_digest.sha256, actual.sha256};
}

}  // namespace vit3d_infer
