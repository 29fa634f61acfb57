// vit3d-infer's record of what wrote each output (<output>.vit3d.json), and the rule it serves: an existing
// output is skipped only when its record describes it and names this run's weights, output kind,
// preprocessing and input; any other existing output stops the run (exit code 2) before it computes
// anything. A killed run leaves nothing a rerun would wrongly trust, and the rerun finishes it.

#include <nlohmann/json.hpp>

#include <csignal>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "vit3d/formats/image.hpp"
#include "vit3d/formats/npy.hpp"

namespace {

using namespace vit3d_cli_test;
using ::testing::HasSubstr;
using vit3d::Tensor;
namespace io = vit3d::io;

const std::string timm = model("timm_vit_token_f32");
// Another model of the same input and output shapes (mean-pooled): logits [1, 5] too, other numbers.
const std::string other_model = model("timm_vit_avg_f32");

// The digest sha256sum prints: what a user compares a record with.
std::string sha256sum(const std::string& file) {
    const Result r = shell("sha256sum '" + file + "'");
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, 64);
}
std::string short_sha256(const std::string& file) { return sha256sum(file).substr(0, 12); }

nlohmann::json record_of(const std::string& output) {
    return nlohmann::json::parse(read_text(output + ".vit3d.json"));
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

class CliRecords : public CliTest {};

TEST_F(CliRecords, EachOutputHasARecordOfWhatWroteIt) {
    write_inputs(path("in"), {"a"});
    const Result r =
        infer({"-w", timm, "-i", path("in/a.npy"), "-o", path("a.npy"), "--window", "-1,1", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto record = record_of(path("a.npy"));
    EXPECT_EQ(record["record"], "vit3d-infer output");
    EXPECT_EQ(record["record_version"], 1);
    EXPECT_EQ(record["weights"]["path"], timm);
    EXPECT_EQ(record["weights"]["bytes"], fs::file_size(timm));
    EXPECT_EQ(record["weights"]["sha256"], sha256sum(timm));
    EXPECT_EQ(record["output_kind"], "logits");
    EXPECT_EQ(record["preprocess"]["mean"], nlohmann::json({0.485, 0.456, 0.406}));
    EXPECT_EQ(record["preprocess"]["intensity_window"]["low"], -1.0);  // the override, in force
    EXPECT_EQ(record["preprocess"]["npy_values"], false);
    EXPECT_EQ(record["input"]["path"], path("in/a.npy"));
    EXPECT_EQ(record["input"]["sha256"], sha256sum(path("in/a.npy")));
    EXPECT_EQ(record["output"]["file"], "a.npy");
    EXPECT_EQ(record["output"]["bytes"], fs::file_size(path("a.npy")));
    EXPECT_EQ(record["output"]["sha256"], sha256sum(path("a.npy")));
    EXPECT_EQ(record["output"]["shape"], nlohmann::json({1, 5}));

    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["model"]["sha256"], sha256sum(timm));
    EXPECT_EQ(j["model"]["bytes"], fs::file_size(timm));
    EXPECT_EQ(j["files"][0]["record"], path("a.npy.vit3d.json"));
    EXPECT_EQ(j["files"][0]["input_sha256"], record["input"]["sha256"]);
    EXPECT_EQ(j["files"][0]["output_sha256"], record["output"]["sha256"]);
    EXPECT_THAT(infer({"-w", timm, "-i", path("in/a.npy"), "-o", path("b.npy")}).out,
                HasSubstr("weights: sha256 " + sha256sum(timm) + ", "));
}

// The same weights, kind, preprocessing and input (at another path, same bytes): skipped, untouched.
TEST_F(CliRecords, AnOutputOfThisRunsModelKindPreprocessingAndInputIsSkipped) {
    write_inputs(path("in"), {"a", "b"});
    const std::vector<std::string> options = {"-w", timm,     "-o",       path("out"),
                                              "-k", "pooled", "--window", "-2,2"};
    ASSERT_EQ(infer(with(options, {"-i", path("in")})).code, 0);
    const auto written = fs::last_write_time(path("out/a.npy"));
    fs::copy(path("in"), path("moved"));
    const Result r = infer(with(options, {"-i", path("moved"), "--json"}));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("skipping 2 input(s) whose output exists, written by this model, kind, "
                                 "preprocessing and input (--overwrite rewrites them)"));
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["summary"]["skipped"], 2);
    EXPECT_EQ(j["summary"]["done"], 0);
    EXPECT_EQ(j["files"][0]["status"], "skipped");
    EXPECT_EQ(j["files"][0]["record"], path("out/a.npy.vit3d.json"));
    EXPECT_EQ(j["files"][0]["input_sha256"], sha256sum(path("moved/a.npy")));
    EXPECT_EQ(j["files"][0]["output_sha256"], sha256sum(path("out/a.npy")));
    EXPECT_EQ(fs::last_write_time(path("out/a.npy")), written);
}

// Other weights of the same architecture give outputs of the same shape: the silent wrong answer a skip on
// the name alone would give. The run stops at the first such output before computing any input.
TEST_F(CliRecords, AnOutputOfAnotherModelStopsTheRunBeforeItComputes) {
    write_inputs(path("in"), {"a", "b", "c"});
    ASSERT_EQ(infer({"-w", timm, "-i", path("in/a.npy"), path("in/b.npy"), "-o", path("out")}).code, 0);
    const std::string a_bytes = read_text(path("out/a.npy"));
    const Result r = infer({"-w", other_model, "-i", path("in"), "-o", path("out")});
    expect_one_line_error(r, 2,
                          "\"" + path("out/a.npy") + "\" was written by another model (weights sha256 " +
                              short_sha256(timm) + " \"" + timm + "\", this run " +
                              short_sha256(other_model) + " \"" + other_model +
                              "\"); use --overwrite to rewrite it");
    EXPECT_EQ(read_text(path("out/a.npy")), a_bytes);
    EXPECT_EQ(names_in(path("out")), with_records({"a.npy", "b.npy"}));  // c was not computed
    const Result json = infer({"-w", other_model, "-i", path("in"), "-o", path("out"), "--json"});
    EXPECT_EQ(nlohmann::json::parse(json.out)["exit_code"], 2);
}

// A Hugging Face folder's digest covers the files the model is read from: a changed config.json makes the
// outputs of the folder as it was those of another model; a tokenizer file beside them does not.
TEST_F(CliRecords, AFolderIsIdentifiedByTheFilesItsModelIsReadFrom) {
    const std::string folder = path("vit");
    fs::copy(fixture("huggingface/vit_model"), folder, fs::copy_options::recursive);
    const Tensor<float> x = Tensor<float>::randn({1, 3, 16, 16}, 5);
    io::write_npy(path("x.npy"), x);
    const std::vector<std::string> run = {"-w", folder, "-i", path("x.npy"), "-o", path("y.npy")};
    ASSERT_EQ(infer(run).code, 0);
    std::ofstream(folder + "/tokenizer.json") << "{}";
    EXPECT_EQ(infer(run).code, 0);  // skipped: the same model
    std::string config = read_text(folder + "/config.json");
    config.replace(config.find("\"layer_norm_eps\""), 16, "\"layer_norm_eps\": 1e-6, \"x\"");
    std::ofstream(folder + "/config.json") << config;
    const Result changed = infer(run);
    EXPECT_EQ(changed.code, 2);
    EXPECT_THAT(changed.err, HasSubstr("was written by another model"));
}

TEST_F(CliRecords, AnOutputOfAnotherKindStopsTheRun) {
    write_inputs(path("in"), {"a"});
    ASSERT_EQ(infer({"-w", timm, "-i", path("in/a.npy"), "-o", path("a.npy")}).code, 0);
    const std::string bytes = read_text(path("a.npy"));
    expect_one_line_error(infer({"-w", timm, "-i", path("in/a.npy"), "-o", path("a.npy"), "-k", "pooled"}), 2,
                          "\"" + path("a.npy") +
                              "\" holds another output kind (logits, this run pooled); use --overwrite to "
                              "rewrite it");
    EXPECT_EQ(read_text(path("a.npy")), bytes);
}

// The preprocessing compared is the one in force: the weights file's after the command line's overrides,
// and whether .npy inputs go through it.
TEST_F(CliRecords, OtherPreprocessingStopsTheRun) {
    io::write_png(path("a.png"), Tensor<std::uint8_t>::full({3, 8, 8}, 9));
    const std::vector<std::string> image = {"-w", timm, "-i", path("a.png"), "-o", path("a.npy")};
    ASSERT_EQ(infer(image).code, 0);
    const std::string was = "\"" + path("a.npy") + "\" was written with other preprocessing (";
    expect_one_line_error(
        infer(with(image, {"--mean", "0.5,0.5,0.5"})), 2,
        was + "mean [0.485,0.456,0.406], this run [0.5,0.5,0.5]); use --overwrite to rewrite it");
    expect_one_line_error(infer(with(image, {"--raw"})), 2, was + "mean [0.485,0.456,0.406], this run null)");
    expect_one_line_error(infer(with(image, {"--resize-size", "0"})), 2,
                          was + "resize_size 35, this run null)");
    const Result same = infer(image);
    EXPECT_EQ(same.code, 0) << same.err;
    EXPECT_THAT(same.out, HasSubstr("0 done, 1 skipped"));

    write_inputs(path("in"), {"b"});
    const std::vector<std::string> array = {"-w", timm, "-i", path("in/b.npy"), "-o", path("b.npy")};
    ASSERT_EQ(infer(array).code, 0);
    expect_one_line_error(
        infer(with(array, {"--npy-preprocess"})), 2,
        "\"" + path("b.npy") + "\" was written with other preprocessing (npy_values false, this run true)");
}

// Inputs of one stem in two folders write one output name: the second folder's is not the first's output.
TEST_F(CliRecords, AnOutputOfAnotherInputStopsTheRun) {
    write_inputs(path("one"), {"scan"});
    fs::create_directories(path("two"));
    io::write_npy(path("two/scan.npy"), Tensor<float>::randn({3, 32, 32}, 7));
    ASSERT_EQ(infer({"-w", timm, "-i", path("one"), "-o", path("out")}).code, 0);
    expect_one_line_error(infer({"-w", timm, "-i", path("two"), "-o", path("out")}), 2,
                          "\"" + path("out/scan.npy") + "\" was written from another input (sha256 " +
                              short_sha256(path("one/scan.npy")) + " of \"" + path("one/scan.npy") +
                              "\", this run's \"" + path("two/scan.npy") + "\" has sha256 " +
                              short_sha256(path("two/scan.npy")) + "); use --overwrite to rewrite it");
}

// An output with no record (by hand, another program, an older vit3d-infer), one that is not the file its
// record describes, and a record that is not one are not trusted.
TEST_F(CliRecords, AnOutputWithoutItsRecordStopsTheRun) {
    write_inputs(path("in"), {"a", "b"});
    fs::create_directories(path("out"));
    write_text(path("out/b.npy"), "written by hand");
    const std::vector<std::string> run = {"-w", timm, "-i", path("in"), "-o", path("out")};
    expect_one_line_error(infer(run), 2,
                          "\"" + path("out/b.npy") + "\" has no record of what wrote it (no \"" +
                              path("out/b.npy.vit3d.json") +
                              "\"): written by hand, by another program or by a vit3d-infer from before "
                              "records; use --overwrite to rewrite \"" +
                              path("out/b.npy") + "\"");
    EXPECT_EQ(names_in(path("out")), std::vector<std::string>{"b.npy"});

    ASSERT_EQ(infer(with(run, {"--overwrite"})).code, 0);
    const std::string a_bytes = read_text(path("out/a.npy"));
    fs::copy_file(path("out/b.npy"), path("out/a.npy"), fs::copy_options::overwrite_existing);
    expect_one_line_error(
        infer(run), 2,
        "\"" + path("out/a.npy") + "\" is not the file its record describes (sha256 " +
            short_sha256(path("out/b.npy")) + ", the record's " +
            record_of(path("out/a.npy"))["output"]["sha256"].get<std::string>().substr(0, 12) +
            "): changed since vit3d-infer wrote it, or a run with --overwrite stopped before "
            "replacing it; use --overwrite to rewrite it");

    write_text(path("out/a.npy"), a_bytes);
    write_text(path("out/b.npy.vit3d.json"), "{\"record\": \"vit3d-infer output\"}");
    expect_one_line_error(infer(run), 2,
                          "\"" + path("out/b.npy.vit3d.json") +
                              "\" is not a record this vit3d-infer reads (no field \"record_version\"); use "
                              "--overwrite to rewrite \"" +
                              path("out/b.npy") + "\"");
}

TEST_F(CliRecords, OverwriteRewritesTheOutputAndItsRecord) {
    write_inputs(path("in"), {"a"});
    const std::vector<std::string> run = {"-i", path("in/a.npy"), "-o", path("a.npy")};
    ASSERT_EQ(infer(with({"-w", timm}, run)).code, 0);
    const std::string before = read_text(path("a.npy"));
    const Result r = infer(with({"-w", other_model, "--overwrite"}, run));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(read_text(path("a.npy")), before);
    EXPECT_EQ(record_of(path("a.npy"))["weights"]["sha256"], sha256sum(other_model));
    EXPECT_EQ(record_of(path("a.npy"))["output"]["sha256"], sha256sum(path("a.npy")));
    EXPECT_THAT(infer(with({"-w", other_model}, run)).out, HasSubstr("0 done, 1 skipped"));
}

// The states a kill leaves, each at its step of writing: after the record and before the output's rename
// (a record, the output's temporary file, no output); before the record (a temporary file, nothing else);
// and a real kill while the record is written (SIGXFSZ: a file size limit that the output, 148 bytes, fits
// and its record, about 1 KB, does not). The rerun keeps the complete output and finishes the others.
TEST_F(CliRecords, AKilledRunResumes) {
    write_inputs(path("in"), {"a", "b", "c", "d"});
    const std::string command =
        "exec '" + infer_path() + "' -w '" + timm + "' -i '" + path("in") + "' -o '" + path("out") + "'";
    ASSERT_EQ(shell(command + " --quiet").code, 0);
    std::vector<std::string> expected;
    for (const char* name : {"a.npy", "b.npy", "c.npy", "d.npy"})
        expected.push_back(read_text(path("out/") + name));

    fs::rename(path("out/b.npy"), path("out/.b.npy.tmp-0123456789ab"));
    for (const char* name : {"c.npy", "c.npy.vit3d.json", "d.npy", "d.npy.vit3d.json"})
        fs::remove(path("out/") + name);
    write_text(path("out/.c.npy.tmp-0123456789ab"), "\x93NUMPY partial");
    const Result killed = shell("ulimit -f 1; " + command);
    EXPECT_EQ(killed.code, 128 + SIGXFSZ) << killed.err;
    EXPECT_FALSE(fs::exists(path("out/b.npy")));

    const Result resumed = shell(command + " --json");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    const auto j = nlohmann::json::parse(resumed.out);
    EXPECT_EQ(j["summary"]["skipped"], 1);
    EXPECT_EQ(j["summary"]["done"], 3);
    std::vector<std::string> visible;
    for (const std::string& name : names_in(path("out")))
        if (name[0] != '.') visible.push_back(name);
    EXPECT_EQ(visible, with_records({"a.npy", "b.npy", "c.npy", "d.npy"}));
    int i = 0;
    for (const char* name : {"a.npy", "b.npy", "c.npy", "d.npy"}) {
        EXPECT_EQ(read_text(path("out/") + name), expected[i++]) << name;
        EXPECT_EQ(record_of(path("out/") + name)["output"]["sha256"], sha256sum(path("out/") + name)) << name;
    }
}

}  // namespace
