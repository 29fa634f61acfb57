// docs/configs.md, made from the configs' field lists (core/fields.hpp). Without arguments it prints the
// page; with --check FILE it compares FILE with the page and fails naming the first line that differs, so
// that a list changed without the page fails the tests (ctest -R docs.configs). To update the page:
//     ./build/tests/vit3d_config_docs > docs/configs.md

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>
#include <vit3d.hpp>

namespace {

using vit3d::FieldRange;
using vit3d::message;

template <class T>
struct ArrayLength : std::integral_constant<std::size_t, 0> {};
template <class T, std::size_t N>
struct ArrayLength<std::array<T, N>> : std::integral_constant<std::size_t, N> {};

const char* range_words(FieldRange range) {
    switch (range) {
        case FieldRange::positive:
            return "positive ";
        case FieldRange::non_negative:
            return "non-negative ";
        case FieldRange::any:
            break;
    }
    return "";
}

// What a field holds: "positive integer", "3 positive integers", "`cls`, `mean` or `none`", ... An array's
// length is written as `length` when one is given ("N" for a config of any number of axes).
template <class V>
std::string value_text(FieldRange range, const char* length) {
    if constexpr (std::is_same_v<V, bool>) {
        return "`true` or `false`";
    } else if constexpr (std::is_enum_v<V>) {
        return vit3d::enum_name_list<V>("`", ", ", " or ");
    } else if constexpr (std::is_integral_v<V>) {
        return message(std::is_unsigned_v<V> ? "non-negative " : range_words(range), "integer");
    } else if constexpr (std::is_floating_point_v<V>) {
        return message(range_words(range), "number");
    } else if constexpr (std::is_same_v<V, std::vector<vit3d::Index>>) {
        return message("list of ", range_words(range), "integers");
    } else {
        static_assert(ArrayLength<V>::value > 0, "config_docs: a field of a type the page cannot describe");
        return message(length ? message(length) : message(ArrayLength<V>::value), " ", range_words(range),
                       "integers");
    }
}

template <class V>
bool within(const V& value, FieldRange range) {
    if constexpr (std::is_arithmetic_v<V> && !std::is_same_v<V, bool>) {
        return range == FieldRange::any || (range == FieldRange::positive ? value > 0 : value >= 0);
    } else if constexpr (ArrayLength<V>::value > 0 || std::is_same_v<V, std::vector<vit3d::Index>>) {
        for (const auto& x : value)
            if (!within(x, range)) return false;
        return true;
    } else {
        return true;
    }
}

// The default as C++ and JSON write it, or "—" for a default outside the field's range: a field to set.
template <class V>
std::string default_text(const V& value, FieldRange range) {
    return within(value, range) ? message("`", value, "`") : std::string("—");
}

template <class Config>
std::string field_table(const char* length = nullptr) {
    std::string out = "| field | value | default | meaning |\n|---|---|---|---|\n";
    Config().visit_fields([&](const auto& field) {
        using V = std::remove_cv_t<std::remove_reference_t<decltype(field.value)>>;
        out += message("| `", field.name, "` | ", value_text<V>(field.range, length), " | ",
                       default_text(field.value, field.range), field.optional ? ", may be absent" : "", " | ",
                       field.meaning, " |\n");
    });
    return out;
}

std::string page() {
    namespace models = vit3d::models;
    namespace nn = vit3d::nn;
    return message(
        "<!-- Made by tests/docs/config_docs.cpp from the configs' field lists; ctest -R docs.configs fails "
        "when "
        "this page\nis stale. To update it: ./build/tests/vit3d_config_docs > docs/configs.md -->\n"
        "# Configurations\n\n"
        "Every field of vit3d's configuration structs: what it holds, its default and what it means, as the "
        "struct's\nfield list gives them (`list_fields`, see `include/vit3d/core/fields.hpp`). The same list "
        "reads and writes a\nmodel's configuration in a weights file, and sets the configs of the parts a "
        "model "
        "is built from. A\ndefault of — means that the field has none: set it.\n\n"
        "## Model kinds\n\n"
        "The `config` of a weights file's description ([the metadata schema](weights.md#the-metadata-schema-"
        "version-1))\nholds every field of its kind's configuration, by the field's name, and no other; "
        "enumerators are written by\nname. A field whose default says *may be absent* came after files "
        "were written without it: such a file\nmeans its default.\n\n"
        "### `models::VisionTransformerConfig<N>`: kinds `vit2d` (N = 2) and `vit3d` (N = 3)\n\n",
        field_table<models::VisionTransformerConfig<3>>("N"),
        "\n### `models::CTEncoderConfig`: kind `ct_encoder`\n\n", field_table<models::CTEncoderConfig>(),
        "\n## Modules\n\n"
        "The configs of the modules a model is made of, for building one by hand "
        "([modules.md](modules.md#modules)).\nA model's config sets them from its own fields.\n\n"
        "### `nn::EncoderBlockConfig`\n\n",
        field_table<nn::EncoderBlockConfig>(), "\n### `nn::MultiHeadAttentionConfig`\n\n",
        field_table<nn::MultiHeadAttentionConfig>(), "\n### `nn::MlpConfig`\n\n",
        field_table<nn::MlpConfig>(), "\n### `nn::AttentionPoolConfig`\n\n",
        field_table<nn::AttentionPoolConfig>(), "\n### `nn::PatchEmbedConfig<N>`\n\n",
        field_table<nn::PatchEmbedConfig<3>>("N"), "\n### `nn::HybridBlockConfig`\n\n",
        field_table<nn::HybridBlockConfig>(), "\n### `nn::AnatomicalEncoderConfig`\n\n",
        field_table<nn::AnatomicalEncoderConfig>());
}

// 0 when the file at `path` is the page; else 1, after naming the first line that differs.
int check(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "%s: cannot read it\n", path);
        return 1;
    }
    const std::string committed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string made = page();
    if (committed == made) return 0;
    std::istringstream a(committed), b(made);
    std::string line_a, line_b;
    int line = 1;
    while (true) {
        const bool more_a = static_cast<bool>(std::getline(a, line_a));
        const bool more_b = static_cast<bool>(std::getline(b, line_b));
        if (!more_a || !more_b || line_a != line_b) {
            std::fprintf(
                stderr,
                "%s is not what the configs' field lists give: line %d is\n  %s\nbut should be\n  %s\n"
                "Update it: ./build/tests/vit3d_config_docs > docs/configs.md\n",
                path, line, more_a ? line_a.c_str() : "(the end of the file)",
                more_b ? line_b.c_str() : "(the end of the page)");
            return 1;
        }
        ++line;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--check") return check(argv[2]);
    if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--check docs/configs.md]\n", argv[0]);
        return 2;
    }
    std::fputs(page().c_str(), stdout);
    return 0;
}
