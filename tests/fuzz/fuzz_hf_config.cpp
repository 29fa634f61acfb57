// libFuzzer target for what vit3d reads from a Hugging Face model folder's JSON files
// (vit3d/io/huggingface/): the input is a config.json and a preprocessor_config.json, split at the first
// NUL byte. Either both describe a model and its preprocessing, or reading them throws vit3d::io_error;
// every other exception, a crash or a sanitizer report is a bug. The folder's tensors are a fixed small set
// (a pooler, classifiers and a projection), so that the parts that follow the weights are reached.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>
#include <vit3d/io/huggingface/model_config.hpp>
#include <vit3d/io/huggingface/preprocessor_config.hpp>
#include <vit3d/io/model_kinds/config_json.hpp>
#include <vit3d/io/safetensors.hpp>

namespace {

const vit3d::io::Safetensors& folder_tensors() {
    static const vit3d::io::Safetensors file = [] {
        using vit3d::Tensor;
        std::map<std::string, Tensor<float>> tensors;
        for (const char* name : {"pooler.dense.weight", "vit.pooler.dense.weight", "deit.pooler.dense.weight",
                                 "classifier.weight", "cls_classifier.weight", "visual_projection.weight"})
            tensors.emplace(name, Tensor<float>(vit3d::Shape{4, 8}));
        std::map<std::string, const Tensor<float>*> view;
        for (const auto& [name, tensor] : tensors) view.emplace(name, &tensor);
        return vit3d::io::Safetensors::parse(vit3d::io::serialize_safetensors(view), "folder");
    }();
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace hf = vit3d::io::huggingface;
    const std::string input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = input.find('\0');
    const std::string config_text = input.substr(0, split);
    const std::string processor_text = split == std::string::npos ? std::string() : input.substr(split + 1);
    const nlohmann::json config = nlohmann::json::parse(config_text, nullptr, false);
    if (config.is_discarded()) return 0;
    const nlohmann::json processor = nlohmann::json::parse(processor_text, nullptr, false);
    try {
        const hf::FolderModel model = hf::folder_model(config, folder_tensors(), "config.json: ");
        (void)vit3d::io::config_json(model.config);
        (void)hf::folder_preprocessing(processor.is_discarded() ? nullptr : &processor, model.config.channels,
                                       model.config.input_size, "preprocessor_config.json: ");
    } catch (const vit3d::io_error&) {
    }
    return 0;
}
