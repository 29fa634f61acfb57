// libFuzzer target for vit3d::io::Safetensors::parse. Any input must either parse or throw vit3d::io_error;
// every other exception, a crash or a sanitizer report is a bug. An input that parses is read in full (as
// float and as double; a tensor of a dtype vit3d does not read must be refused with an io_error), written
// back as F64 and parsed again, and must come back bit for bit.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <vit3d/io/safetensors.hpp>

namespace {

// Like assert, but also in release builds.
void require(bool condition) {
    if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vit3d;
    using namespace vit3d::io;

    std::vector<std::uint8_t> bytes(data, data + size);
    std::optional<Safetensors> parsed;
    try {
        parsed.emplace(Safetensors::parse(std::move(bytes), "fuzz"));
    } catch (const io_error&) {
        return 0;
    }
    const Safetensors& file = *parsed;

    std::map<std::string, Tensor<double>> values;
    std::map<std::string, const Tensor<double>*> tensors;
    std::vector<std::string> readable;
    for (const std::string& name : file.names()) {
        const TensorInfo& info = file.info(name);
        if (!info.other_dtype.empty()) {  // listed, never read: reading it is an io_error
            bool refused = false;
            try {
                (void)file.get<float>(name);
            } catch (const io_error&) {
                refused = true;
            }
            require(refused);
            continue;
        }
        readable.push_back(name);
        const Tensor<float> as_float = file.get<float>(name, info.shape);
        const Tensor<double>& as_double = values.emplace(name, file.get<double>(name)).first->second;
        require(as_float.shape() == info.shape && as_double.shape() == info.shape);
        tensors.emplace(name, &as_double);
    }

    const Safetensors again = Safetensors::parse(serialize_safetensors(tensors, file.metadata(), DType::F64));
    require(again.names() == readable && again.metadata() == file.metadata());
    for (const auto& [name, original] : values) {
        const Tensor<double> back = again.get<double>(name);
        require(back.shape() == original.shape());
        require(back.size() == 0 || std::memcmp(back.data(), original.data(),
                                                static_cast<std::size_t>(back.size()) * sizeof(double)) == 0);
    }
    return 0;
}
