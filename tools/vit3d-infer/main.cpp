// vit3d-infer: runs a vit3d weights file (tools/export_weights.py) or a Hugging Face model folder over .npy
// arrays, images and NIfTI volumes, and writes one .npy per input. docs/vit3d-infer.md is the manual; --help
// the summary.
//
//   vit3d-infer --weights model.safetensors --input x.npy --output y.npy
//   vit3d-infer -w model.safetensors -i scans/ -o features/ --output-kind pooled --shard 3/8
//
// Every error is one line on stderr and a non-zero exit: 2 for a bad command line or a run that cannot
// start, 1 when some inputs failed (the others are written), 130 when interrupted. Outputs are written
// through a temporary file and renamed when complete, so a killed run leaves no partial output. Each output
// has a record of what wrote it (output_record.hpp); a rerun skips the outputs whose record names its
// model, kind, preprocessing and input, and stops before computing at any other existing output.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "input_listing.hpp"
#include "input_reading.hpp"
#include "options.hpp"
#include "output_record.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "sha256.hpp"
#include "sliding_window.hpp"
#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/load_model.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/tensor/ops.hpp"

namespace {

using namespace vit3d_infer;
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t interrupt_requested = 0;

extern "C" void on_interrupt(int signal) {
    interrupt_requested = 1;
    std::signal(signal, SIG_DFL);  // a second Ctrl-C stops at once
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Messages are one line each, whatever the library put in them.
std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

io::ModelOutput output_named(const std::string& name) {
    if (const std::optional<io::ModelOutput> o = vit3d::enum_from_name<io::ModelOutput>(name)) return *o;
    throw usage_error(message("--output-kind: unknown output ", quote(name)));
}

io::ModelOutput choose_output(const io::LoadedModel<float>& model, const std::string& asked) {
    using io::ModelOutput;
    if (asked.empty()) {
        for (ModelOutput o : {ModelOutput::logits, ModelOutput::pooled, ModelOutput::tokens})
            if (model.gives(o)) return o;
        return model.outputs().front();
    }
    const ModelOutput o = output_named(asked);
    if (!model.gives(o)) {
        std::string listing;
        for (ModelOutput g : model.outputs()) listing += message(listing.empty() ? "" : ", ", g);
        throw usage_error(message("--output-kind ", asked, ": this ", model.family(), " ", model.kind(),
                                  " model gives no ", asked, " (", model.why_not(o), "); it gives ",
                                  listing));
    }
    return o;
}

// input_shape: [C, spatial...] of the run (the file's, or --input-size's).
ModelFacts facts_of(const io::LoadedModel<float>& model, const vit3d::Shape& input_shape) {
    ModelFacts m;
    m.path = model.source();
    m.family = model.family();
    m.kind = model.kind();
    m.layout = model.preprocess().layout;
    m.parameters = model.parameter_count();
    m.input_shape = input_shape;
    for (io::ModelOutput o : model.outputs()) m.outputs.emplace_back(io::output_name(o));
    const nlohmann::json config = io::description_json_field(model.description().config, "config");
    m.patches = 1;
    const auto patch = config.find("patch_size");
    for (std::size_t a = 1; a < m.input_shape.size(); ++a) {
        const vit3d::Index p =
            patch != config.end() && patch->is_array() && patch->size() == m.input_shape.size() - 1
                ? (*patch)[a - 1].get<vit3d::Index>()
                : 1;
        m.grid.push_back(m.input_shape[a] / p);
        m.patches *= m.grid.back();
    }
    const auto class_token = config.find("class_token");
    const bool has_class_token = model.kind() == "ct_encoder" ||
                                 (class_token != config.end() && class_token->is_boolean() && *class_token);
    m.tokens = m.patches + (has_class_token ? 1 : 0);
    return m;
}

// A file read and preprocessed, waiting for its forward pass.
struct Pending {
    std::size_t file;  // index into the report's files
    Tensor<float> batch;
    FileDigest input;  // of the file as read, for the output's record
};

class Run {
  public:
    Run(const Options& options, const io::LoadedModel<float>& model, io::ModelOutput output,
        const Pipeline& pipeline, const RunIdentity& identity, RunReport& report, Progress& progress)
        : o_(options),
          model_(model),
          output_(output),
          pipeline_(pipeline),
          identity_(identity),
          report_(report),
          progress_(progress) {}

    void file(std::size_t index) {
        FileResult& f = report_.files[index];
        const auto start = Clock::now();
        bool whole = false;
        try {
            ModelInput in = read_model_input(f.input, pipeline_);
            f.read_shape = in.read_shape;
            f.read_dtype = in.read_dtype;
            f.input_shape = in.batch.shape();
            const auto hash_start = Clock::now();
            FileDigest input = sha256_of_input(f.input);
            report_.hash_seconds += seconds_since(hash_start);
            f.input_sha256 = input.sha256;
            if (!o_.save_input.empty())
                io::write_npy((fs::path(o_.save_input) / (stem_of(f.input) + ".npy")).string(), in.batch);
            // An input run over windows goes alone: its size is not the others'.
            whole = runs_over_windows(in.batch, pipeline_);
            if (whole) flush();
            pending_samples_ += in.batch.dim(0);
            pending_.push_back({index, std::move(in.batch), std::move(input)});
        } catch (const std::exception& e) {
            f.read_seconds = seconds_since(start);
            report_.read_seconds += f.read_seconds;
            fail(f, e.what());
            return;
        }
        f.read_seconds = seconds_since(start);
        report_.read_seconds += f.read_seconds;
        if (whole || pending_samples_ >= o_.batch_size) flush();
    }

    // Runs the pending files through the model, batch_size samples at a time, and writes their outputs.
    void flush() {
        if (pending_.empty()) return;
        std::vector<Pending> group = std::move(pending_);
        pending_.clear();
        const vit3d::Index samples = std::exchange(pending_samples_, 0);
        const auto start = Clock::now();
        Tensor<float> out;
        try {
            Tensor<float> x;
            if (group.size() == 1) {
                x = std::move(group[0].batch);
            } else {
                std::vector<Tensor<float>> parts;
                for (Pending& p : group) parts.push_back(std::move(p.batch));
                x = vit3d::concat<float>(parts, 0);
            }
            std::vector<Tensor<float>> results;
            for (vit3d::Index first = 0; first < samples; first += o_.batch_size) {
                const vit3d::Index n = std::min(o_.batch_size, samples - first);
                results.push_back(
                    forward_output(model_, n == samples ? x : x.narrow(0, first, n), output_, pipeline_));
            }
            out = results.size() == 1 ? std::move(results[0]) : vit3d::concat<float>(results, 0);
        } catch (const std::exception& e) {
            const double seconds = seconds_since(start);
            report_.forward_seconds += seconds;
            for (const Pending& p : group) fail(report_.files[p.file], e.what());
            return;
        }
        const double seconds = seconds_since(start);
        report_.forward_seconds += seconds;
        vit3d::Index first = 0;
        for (const Pending& p : group) {
            FileResult& f = report_.files[p.file];
            const vit3d::Index n = f.input_shape[0];
            f.forward_seconds = seconds * static_cast<double>(n) / static_cast<double>(samples);
            const auto write_start = Clock::now();
            try {
                const Tensor<float> y = group.size() == 1 ? std::move(out) : out.narrow(0, first, n);
                f.output_sha256 = write_output_and_record(f.output, y, identity_, f.input, p.input).sha256;
                f.record = record_path(f.output);
                f.output_shape = y.shape();
                f.status = FileStatus::done;
            } catch (const std::exception& e) {
                f.write_seconds = seconds_since(write_start);
                report_.write_seconds += f.write_seconds;
                fail(f, e.what());
                first += n;
                continue;
            }
            f.write_seconds = seconds_since(write_start);
            report_.write_seconds += f.write_seconds;
            first += n;
            progress_.done(f.input, message("done ", f.read_shape, " -> ", f.input_shape, " -> ",
                                            report_.output_kind, " ", f.output_shape, " ", f.output));
        }
    }

  private:
    void fail(FileResult& f, const std::string& reason) {
        f.status = FileStatus::failed;
        f.error = one_line(reason);
        progress_.failed(f.input, f.error);
    }

    const Options& o_;
    const io::LoadedModel<float>& model_;
    io::ModelOutput output_;
    const Pipeline& pipeline_;
    const RunIdentity& identity_;
    RunReport& report_;
    Progress& progress_;
    std::vector<Pending> pending_;
    vit3d::Index pending_samples_ = 0;
};

// Where each input's output goes; usage_error when that cannot work.
std::vector<std::string> output_paths(const Options& o, const InputListing& listing) {
    std::error_code ec;
    std::vector<std::string> outputs;
    const bool folder = fs::is_directory(o.output, ec) || o.output.back() == '/';
    const bool npy_file = !folder && ends_with(lowercase(o.output), ".npy");
    if (listing.several) {
        if (fs::exists(o.output, ec) && !fs::is_directory(o.output, ec))
            throw usage_error(message("--output ", quote(o.output),
                                      ": with several inputs --output is a folder, and this is a file"));
        if (npy_file)
            throw usage_error(message("--output ", quote(o.output),
                                      ": with several inputs --output is a folder, and a name ending in .npy "
                                      "names a file; choose a folder name"));
        check_unique_stems(listing.files, o.output);
        for (const std::string& f : listing.files)
            outputs.push_back((fs::path(o.output) / (stem_of(f) + ".npy")).string());
    } else if (folder) {
        outputs.push_back((fs::path(o.output) / (stem_of(listing.files[0]) + ".npy")).string());
    } else if (npy_file) {
        outputs.push_back(o.output);
    } else {
        // Either reading (the file <name>.npy, or a folder to create) is plausible; a guess would put the
        // output where the user's next command does not look.
        throw usage_error(message("--output ", quote(o.output),
                                  ": with one input, expected the output file (a name ending in .npy) or a "
                                  "folder (one that exists, or a name ending in /), e.g. ",
                                  quote(o.output + ".npy"), " or ", quote(o.output + "/")));
    }
    for (std::size_t i = 0; i < outputs.size(); ++i)
        if (fs::exists(listing.files[i], ec) && fs::equivalent(listing.files[i], outputs[i], ec))
            throw usage_error(message("the output of ", quote(listing.files[i]),
                                      " would replace the input itself; choose another --output"));
    return outputs;
}

void make_folder(const std::string& folder, const char* option) {
    std::error_code ec;
    if (folder.empty() || fs::is_directory(folder, ec)) return;
    fs::create_directories(folder, ec);
    if (ec)
        throw usage_error(message(option, " ", quote(folder), ": cannot create the folder: ", ec.message()));
}

int run(const Options& o) {
    const auto run_start = Clock::now();
    RunReport report;
    if (o.threads) vit3d::set_num_threads(*o.threads);
    report.threads = vit3d::num_threads();
    report.batch_size = o.batch_size;

    const InputListing listing = list_inputs(o);
    if (listing.files.empty()) throw usage_error("no input files");
    const std::vector<std::string> all_outputs = output_paths(o, listing);
    report.inputs_listed = listing.files.size();
    std::vector<std::size_t> selected(listing.files.size());
    std::iota(selected.begin(), selected.end(), std::size_t(0));
    if (o.shard) {
        report.shard = std::make_pair(o.shard->index, o.shard->count);
        selected = shard_of(listing.files.size(), *o.shard);
    }

    const auto load_start = Clock::now();
    io::LoadedModel<float> model = [&] {
        try {
            io::LoadOptions load;
            load.precision = o.precision;
            return io::load_model<float>(o.weights, load);
        } catch (const std::exception& e) {
            throw usage_error(message("cannot load the model: ", one_line(e.what())));
        }
    }();
    report.load_seconds = seconds_since(load_start);
    Pipeline pipeline = make_pipeline(model, o);
    pipeline.windows = sliding_window_config(o, pipeline);
    report.model = facts_of(model, pipeline.input_shape);
    const io::ModelOutput output = choose_output(model, o.output_kind);
    report.output_kind = io::output_name(output);
    report.precision = vit3d::precision_name(model.precision());
    report.preprocess = vit3d::detail::preprocessing_json_with_steps(pipeline.preprocess);
    report.preprocess["npy_values"] = pipeline.npy_values;
    check_sliding_window_output(pipeline, output);
    if (pipeline.windows) report.preprocess["sliding_window"] = sliding_window_json(*pipeline.windows);

    RunIdentity identity;
    identity.weights_path = absolute_path(o.weights);
    identity.output_kind = report.output_kind;
    identity.precision = report.precision;
    identity.preprocess = report.preprocess;
    const auto hash_start = Clock::now();
    try {
        identity.weights = sha256_of_model(o.weights);
    } catch (const std::exception& e) {
        throw usage_error(message("cannot read the weights file: ", e.what()));
    }
    report.model.bytes = identity.weights.bytes;
    report.model.sha256 = identity.weights.sha256;

    // Every existing output is checked before anything is computed, so that a run that must stop stops
    // at once, having written nothing.
    std::vector<std::size_t> to_do;
    for (std::size_t i : selected) {
        FileResult f;
        f.input = listing.files[i];
        f.output = all_outputs[i];
        const std::optional<OutputProvenance> kept =
            o.overwrite ? std::nullopt : existing_output(f.output, f.input, identity);
        if (kept) {
            f.status = FileStatus::skipped;
            f.error = "output exists, written by this model, kind, preprocessing and input";
            f.input_sha256 = kept->input_sha256;
            f.output_sha256 = kept->output_sha256;
            f.record = record_path(f.output);
        } else {
            to_do.push_back(report.files.size());
        }
        report.files.push_back(std::move(f));
    }
    report.hash_seconds = seconds_since(hash_start);

    if (listing.several)
        make_folder(o.output, "--output");
    else
        make_folder(fs::path(all_outputs[0]).parent_path().string(), "--output");
    make_folder(o.save_input, "--save-input");

    Progress progress(to_do.size(), o.quiet);
    if (const std::size_t skipped = report.files.size() - to_do.size(); skipped > 0)
        progress.note(message("skipping ", skipped,
                              " input(s) whose output exists, written by this model, kind, preprocessing and "
                              "input (--overwrite rewrites ",
                              skipped == 1 ? "it" : "them", ")"));

    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    Run runner(o, model, output, pipeline, identity, report, progress);
    for (std::size_t index : to_do) {
        if (interrupt_requested) break;
        runner.file(index);
    }
    if (!interrupt_requested) runner.flush();
    progress.finish();
    report.interrupted = interrupt_requested != 0;
    report.total_seconds = seconds_since(run_start);

    const int code = report.interrupted ? 130 : report.count(FileStatus::failed) > 0 ? 1 : 0;
    if (o.json) {
        std::printf("%s\n", report_json(report, code).dump().c_str());
    } else if (!o.quiet) {
        print_report_text(report, stdout);
    }
    if (report.count(FileStatus::failed) > 0 && !report.interrupted)
        std::fprintf(stderr, "vit3d-infer: %zu of %zu input(s) failed (%zu done, %zu skipped as existing)\n",
                     report.count(FileStatus::failed), report.files.size(), report.count(FileStatus::done),
                     report.count(FileStatus::skipped));
    if (report.interrupted)
        std::fprintf(stderr, "vit3d-infer: interrupted; a rerun resumes where this one stopped\n");
    return code;
}

// Reported before anything else runs, as one line (and as JSON with --json).
int fatal(const std::string& message, bool json) {
    std::fprintf(stderr, "vit3d-infer: error: %s\n", one_line(message).c_str());
    if (json) {
        nlohmann::ordered_json j;
        j["tool"] = "vit3d-infer";
        j["version"] = VIT3D_VERSION_STRING;
        j["error"] = one_line(message);
        j["exit_code"] = 2;
        std::printf("%s\n", j.dump().c_str());
    }
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    for (int i = 1; i < argc; ++i) json = json || std::strcmp(argv[i], "--json") == 0;
    try {
        CLI::App app{
            "vit3d-infer: run a vit3d model (a weights file from tools/export_weights.py, or a Hugging Face "
            "model folder) over .npy arrays, "
            "images and NIfTI volumes; one .npy output per input.",
            "vit3d-infer"};
        app.set_version_flag("--version", VIT3D_VERSION_STRING);
        app.footer(conventions_text());
        Options options;
        add_options(app, options);
        try {
            app.parse(argc, argv);
        } catch (const CLI::CallForHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForAllHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForVersion& e) {
            return app.exit(e);
        } catch (const CLI::ParseError& e) {
            return fatal(message(e.what(), " (see vit3d-infer --help)"), json);
        }
        check_options(options);
        return run(options);
    } catch (const usage_error& e) {
        return fatal(e.what(), json);
    } catch (const std::exception& e) {
        return fatal(e.what(), json);
    } catch (...) {
        return fatal("unknown error", json);
    }
}
