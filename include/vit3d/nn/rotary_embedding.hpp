#pragma once
// The 2D rotary position embeddings (RoPE) of timm's EVA-family models (timm.models.eva.Eva with
// use_rot_pos_emb, timm 1.0.31; timm.layers.pos_embed_sincos), computed as timm computes them. The variants
// are Eva's rope_type:
//
//   - cat:    RotaryEmbeddingCat with in_pixels=False (EVA-02, the RoPE-ViTs of naver, Perception Encoder,
//             the rope_reg*_gap models): bands b_k = 1 / temperature^(k / K), K = head_dim / 4; a patch's
//             coordinate along an axis is its index + grid_offset, rescaled to i / grid * ref when a
//             ref_feat_shape is given (EVA-02's way of running at a grid other than the pretraining one);
//             angle = coordinate * b_k.
//   - mixed:  RotaryEmbeddingMixed (naver's RoPE-Mixed): learned frequencies per block and head (see
//             RotaryEmbeddingMixed below); angle = x * f_x + y * f_y on the integer patch indices.
//   - dinov3: RotaryEmbeddingDinoV3 (DINOv3, Sapiens2): periods temperature^(2k / (head_dim / 2)); the
//             coordinate of a patch is its centre (i + 0.5 + grid_offset) / grid mapped to [-1, 1], so that
//             every grid spans the same range; angle = 2 pi coordinate / period_k.
//
// A patch token rotates the head_dim / 2 pairs of each head of its query and key, pair p = a * K + k by the
// angle of coordinate channel a (0 or 1) and frequency k. The pair's two elements are (x[2p], x[2p + 1])
// (interleaved, timm's default) or (x[p], x[p + head_dim / 2]) (timm's rotate_half), and the rotation is
// timm's x * cos + rot(x) * sin. Prefix tokens (class, registers) are not rotated (EvaAttention and
// AttentionRope rotate q[:, :, num_prefix_tokens:] and k likewise).
//
// Tokens are row-major over the grid [H, W]. grid_indexing 'ij' makes coordinate channel 0 the row and 1
// the column; 'xy' swaps the two channels only (timm swaps feat_shape and ref_feat_shape, then meshgrid's
// 'xy' swaps the spatial axes back), so the tokens keep their order and each axis keeps its own size and
// reference size.
//
// Precision. timm computes the bands, the periods and the coordinates in float32 whatever the module's
// dtype, so they are rounded to float32 here too, one operation at a time as torch rounds them (each
// float32 +, -, *, / is computed in double and rounded: double's 53 bits make that the correctly rounded
// float32 result). For T = float the angle is rounded as timm's float32 operations round it, and its sine
// and cosine are computed in double and rounded once. For T = double the angle and its sine and cosine are
// computed in double, as in timm's module converted with .double() when asked for float64 tables
// (get_embed(shape, dtype=torch.float64), and the tables update_feat_shape rebuilds). 'mixed' is the
// exception: get_mixed_freqs computes in float32 whatever the dtype (it rounds learned float64 frequencies
// to float32 first), so its double tables hold float32 values.
// Two other paths of a float64 timm model hold float32 tables as well: the tables a module caches when it is
// constructed (an Eva built for a fixed img_size and then converted with .double()) are the float tables,
// cast_rotary_tables<double>(rotary_tables<float>(...)); and 'cat''s get_embed(shape) without a dtype (Eva's
// dynamic_img_size path) rounds its float64 tables to float32:
// cast_rotary_tables<double>(cast_rotary_tables<float>(rotary_tables<double>(...))).
// torch's float32 pow, which makes the bands and periods, is correctly rounded for up to 32 of them (every
// registered model: head_dim <= 128); a longer vector goes through its vectorised pow, which can be one
// float32 ulp off.
//
// Not modelled, because no Eva model can reach it: pixel bands (Eva builds 'cat' with in_pixels=False),
// DINOv3's min_period / max_period and normalize_coords other than 'separate' (Eva passes neither), and
// 'mrope' (a rope_type no registered eva model uses). The training-time coordinate augmentations
// (rope_shift_coords, rope_jitter_coords, rope_rescale_coords: Sapiens2 sets rope_rescale_coords=2) act
// only in training mode and are the identity at inference, so they have no field.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

// timm's rope_type.
enum class RotaryVariant { cat, mixed, dinov3 };

constexpr auto enum_names(RotaryVariant) {
    return enum_table<RotaryVariant>(
        {{RotaryVariant::cat, "cat"}, {RotaryVariant::mixed, "mixed"}, {RotaryVariant::dinov3, "dinov3"}});
}

// timm's rope_grid_indexing: which grid axis is coordinate channel 0.
enum class GridIndexing { ij, xy };

constexpr auto enum_names(GridIndexing) {
    return enum_table<GridIndexing>({{GridIndexing::ij, "ij"}, {GridIndexing::xy, "xy"}});
}

// The settings of an Eva's rotary embedding, named after Eva's arguments without their rope_ prefix.
// Defaults: EVA-02's but for ref_feat_shape. The fields' meanings are in list_fields.
struct RotaryEmbeddingConfig {
    RotaryVariant variant = RotaryVariant::cat;
    Index head_dim = 64;
    double temperature = 10000.0;
    GridIndexing grid_indexing = GridIndexing::ij;
    double grid_offset = 0.0;
    std::array<Index, 2> ref_feat_shape{0, 0};
    bool rotate_half = false;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("variant", c.variant,
                "timm's rope_type: cat (EVA-02, RoPE-ViT, Perception Encoder), mixed (learned frequencies, "
                "RoPE-Mixed) or dinov3 (DINOv3, Sapiens2)"));
        f(field("head_dim", c.head_dim, "width of an attention head, divisible by 4").positive());
        f(field("temperature", c.temperature,
                "rope_temperature: the base of the frequencies (cat) or periods (dinov3); mixed learns its "
                "frequencies and ignores it")
              .positive());
        f(field("grid_indexing", c.grid_indexing,
                "rope_grid_indexing: ij, coordinate channel 0 is the patch row; xy, the patch column"));
        f(field("grid_offset", c.grid_offset,
                "rope_grid_offset, added to every patch coordinate (cat, dinov3; 0 for mixed)"));
        f(field("ref_feat_shape", c.ref_feat_shape,
                "cat: the patch grid [H, W] coordinates are rescaled to (index / grid * ref); [0, 0]: none "
                "(the only value for mixed and dinov3, where timm ignores it)")
              .non_negative());
        f(field(
            "rotate_half", c.rotate_half,
            "rope_rotate_half: rotate the pairs (x[p], x[p + head_dim / 2]) instead of (x[2p], x[2p + 1]) "
            "(false for mixed)"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

// The sines and cosines of the angles, one per rotated pair: [heads, N, head_dim / 2] for 'mixed', whose
// frequencies differ per head, and [1, N, head_dim / 2] (shared by every head) otherwise, for N = H * W
// patch tokens in row-major order.
template <class T>
struct RotaryTables {
    Tensor<T> sin;
    Tensor<T> cos;
    bool rotate_half = false;  // the pair layout they are applied with (the config's)
};

// The learned frequencies of 'mixed' (timm's RotaryEmbeddingMixed, whose only parameter they are).
template <class T>
struct RotaryEmbeddingMixed {
    // [2, depth, heads, head_dim / 2] ("<prefix>.freqs": "rope.freqs" in an Eva): [0] multiplies coordinate
    // channel 0 (the patch column under Eva's usual 'xy' indexing), [1] channel 1, for each block and head.
    Tensor<T> freqs;

    RotaryEmbeddingMixed() = default;
    RotaryEmbeddingMixed(Index depth, Index heads, Index head_dim)
        : freqs(Shape{2, depth, heads, head_dim / 2}) {}

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "freqs"), self.freqs);
    }
};

// The queries (or keys) of a batch in an existing buffer, as rows of heads * head_dim values: element k of
// head h of token n of sample b is at
//     data + b * batch_stride + n * token_stride + h * head_dim + k.
// In vit3d's fused qkv output [B, N, 3, heads, head_dim] the queries start at the buffer and the keys
// heads * head_dim further, with token_stride = 3 * heads * head_dim and batch_stride = N * token_stride.
template <class T>
struct RotaryRows {
    T* data = nullptr;
    Index batch = 1, tokens = 0, heads = 0, head_dim = 0;
    Index batch_stride = 0, token_stride = 0;
};

}  // namespace vit3d::nn

namespace vit3d::detail {

// x rounded to float32, as a double: the float32 result of an operation whose exact result, computed in
// double, is x.
inline double round_to_float(double x) { return static_cast<double>(static_cast<float>(x)); }

inline void check_rotary_config(const char* op, const nn::RotaryEmbeddingConfig& c) {
    if (c.head_dim <= 0 || c.head_dim % 4 != 0)
        throw config_error(message(op, ": expected head_dim divisible by 4 (", c.variant,
                                   " rotates head_dim / 4 pairs per grid axis), got head_dim ", c.head_dim));
    if (!(c.temperature > 0.0) || !std::isfinite(c.temperature))
        throw config_error(message(op, ": expected a positive finite temperature, got ", c.temperature));
    if (!std::isfinite(c.grid_offset))
        throw config_error(message(op, ": expected a finite grid_offset, got ", c.grid_offset));
    const std::array<Index, 2>& ref = c.ref_feat_shape;
    const bool no_ref = ref[0] == 0 && ref[1] == 0;
    if (!no_ref && (ref[0] <= 0 || ref[1] <= 0))
        throw config_error(
            message(op, ": expected ref_feat_shape [0, 0] (none) or two positive sizes, got ", ref));
    // timm drops these settings for the variants below without a word; a config that carries them was not
    // read from the model it claims to describe.
    if (!no_ref && c.variant != nn::RotaryVariant::cat)
        throw config_error(message(op, ": expected ref_feat_shape [0, 0] for ", c.variant,
                                   " (timm rescales only 'cat' coordinates), got ", ref));
    if (c.variant == nn::RotaryVariant::mixed && c.grid_offset != 0.0)
        throw config_error(message(op,
                                   ": expected grid_offset 0 for mixed (timm passes it to cat and "
                                   "dinov3 only), got ",
                                   c.grid_offset));
    if (c.variant == nn::RotaryVariant::mixed && c.rotate_half)
        throw config_error(message(op,
                                   ": expected rotate_half false for mixed (timm's create_rope_embed "
                                   "refuses it), got true"));
}

inline void check_rotary_grid(const char* op, const std::array<Index, 2>& grid) {
    if (grid[0] < 1 || grid[1] < 1)
        throw shape_error(
            message(op, ": expected a patch grid [H, W] of at least one patch along each axis, got ", grid));
}

// The float32 coordinate timm gives patch i of `size` along an axis whose reference size is `ref` (0: none).
inline double rotary_coordinate(const nn::RotaryEmbeddingConfig& c, Index i, Index size, Index ref) {
    const double offset = round_to_float(c.grid_offset);
    if (c.variant == nn::RotaryVariant::dinov3) {  // _build_grid(grid_type='centered', normalize 'separate')
        const double centre = round_to_float(round_to_float(static_cast<double>(i) + 0.5) + offset);
        const double unit = round_to_float(centre / static_cast<double>(size));
        return round_to_float(2.0 * unit - 1.0);
    }
    double x = round_to_float(static_cast<double>(i) + offset);  // _build_grid(grid_type='index')
    if (ref > 0) x = round_to_float(round_to_float(x / static_cast<double>(size)) * static_cast<double>(ref));
    return x;
}

// timm's float32 frequencies: the bands of 'cat' (freq_bands, step 1) or the periods of 'dinov3'.
inline std::vector<double> rotary_frequencies(const nn::RotaryEmbeddingConfig& c) {
    const Index K = c.head_dim / 4;
    const double base = round_to_float(c.temperature);
    std::vector<double> out(static_cast<std::size_t>(K));
    for (Index k = 0; k < K; ++k) {
        const double exponent =
            c.variant == nn::RotaryVariant::dinov3
                ? round_to_float(2.0 * static_cast<double>(k) / static_cast<double>(2 * K))
                : round_to_float(static_cast<double>(k) / static_cast<double>(K));
        const double power = round_to_float(std::pow(base, exponent));
        out[static_cast<std::size_t>(k)] =
            c.variant == nn::RotaryVariant::dinov3 ? power : round_to_float(1.0 / power);
    }
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::nn {

// The tables of 'cat' or 'dinov3' for a patch grid [H, W] of any size, as timm's module of dtype T computes
// them (see "Precision" above). The tables of 'mixed' come from mixed_rotary_tables.
template <class T>
RotaryTables<T> rotary_tables(const RotaryEmbeddingConfig& config, const std::array<Index, 2>& grid) {
    static_assert(std::is_floating_point_v<T>, "rotary tables are float or double");
    const char* op = "vit3d::nn::rotary_tables";
    detail::check_rotary_config(op, config);
    if (config.variant == RotaryVariant::mixed)
        throw config_error(message(op,
                                   ": expected variant cat or dinov3, got mixed, whose frequencies are "
                                   "learned: build its tables with mixed_rotary_tables"));
    detail::check_rotary_grid(op, grid);
    constexpr bool in_float = std::is_same_v<T, float>;
    const bool dinov3 = config.variant == RotaryVariant::dinov3;
    const Index K = config.head_dim / 4, P = 2 * K, W = grid[1];
    std::array<std::vector<double>, 2> along;  // along[a][i]: the coordinate of patch i along grid axis a
    for (std::size_t a = 0; a < 2; ++a)
        for (Index i = 0; i < grid[a]; ++i)
            along[a].push_back(detail::rotary_coordinate(config, i, grid[a], config.ref_feat_shape[a]));
    const std::vector<double> frequency = detail::rotary_frequencies(config);
    // 2 pi as Python's 2 * math.pi, which a float32 tensor multiplies as its float32 rounding.
    const double two_pi = 6.283185307179586476925286766559;
    const double two_pi_used = in_float ? detail::round_to_float(two_pi) : two_pi;

    RotaryTables<T> tables{Tensor<T>::empty({1, grid[0] * W, P}), Tensor<T>::empty({1, grid[0] * W, P}),
                           config.rotate_half};
    const bool xy = config.grid_indexing == GridIndexing::xy;
    for (Index r = 0; r < grid[0]; ++r)
        for (Index c = 0; c < W; ++c) {
            const double row = along[0][static_cast<std::size_t>(r)],
                         column = along[1][static_cast<std::size_t>(c)];
            const double channel[2] = {xy ? column : row, xy ? row : column};
            T* sin_row = tables.sin.data() + (r * W + c) * P;
            T* cos_row = tables.cos.data() + (r * W + c) * P;
            for (Index a = 0; a < 2; ++a)
                for (Index k = 0; k < K; ++k) {
                    const double f = frequency[static_cast<std::size_t>(k)];
                    double angle = dinov3 ? two_pi_used * channel[a] : channel[a] * f;
                    if (in_float) angle = detail::round_to_float(angle);
                    if (dinov3) angle = in_float ? detail::round_to_float(angle / f) : angle / f;
                    sin_row[a * K + k] = static_cast<T>(std::sin(angle));
                    cos_row[a * K + k] = static_cast<T>(std::cos(angle));
                }
        }
    return tables;
}

// The tables of block `block` of 'mixed' for a patch grid [H, W] of any size: [heads, H * W, head_dim / 2].
// timm computes them in float32 whatever the module's dtype (get_mixed_freqs), from the frequencies rounded
// to float32; so do these, whose sines and cosines are computed in double and rounded once to float32.
template <class T>
RotaryTables<T> mixed_rotary_tables(const RotaryEmbeddingConfig& config, const RotaryEmbeddingMixed<T>& rope,
                                    Index block, const std::array<Index, 2>& grid) {
    static_assert(std::is_floating_point_v<T>, "rotary tables are float or double");
    const char* op = "vit3d::nn::mixed_rotary_tables";
    detail::check_rotary_config(op, config);
    if (config.variant != RotaryVariant::mixed)
        throw config_error(message(op, ": expected variant mixed, got ", config.variant,
                                   ", whose tables come from rotary_tables"));
    const Tensor<T>& freqs = rope.freqs;
    const Index P = config.head_dim / 2;
    if (freqs.rank() != 4 || freqs.dim(0) != 2 || freqs.dim(1) < 1 || freqs.dim(2) < 1 || freqs.dim(3) != P)
        throw shape_error(message(op, ": expected freqs [2, depth, heads, ", P, "] (head_dim ",
                                  config.head_dim, " / 2), got ", freqs.shape()));
    const Index depth = freqs.dim(1), heads = freqs.dim(2);
    if (block < 0 || block >= depth)
        throw shape_error(
            message(op, ": expected a block in [0, ", depth, ") (freqs ", freqs.shape(), "), got ", block));
    detail::check_rotary_grid(op, grid);
    const Index N = grid[0] * grid[1];
    RotaryTables<T> tables{Tensor<T>::empty({heads, N, P}), Tensor<T>::empty({heads, N, P}), false};
    const bool xy = config.grid_indexing == GridIndexing::xy;
    for (Index h = 0; h < heads; ++h) {
        const T* fx = freqs.data() + (0 * depth + block) * heads * P + h * P;  // freqs[0, block, h]
        const T* fy = freqs.data() + (1 * depth + block) * heads * P + h * P;  // freqs[1, block, h]
        for (Index n = 0; n < N; ++n) {
            const double r = static_cast<double>(n / grid[1]), c = static_cast<double>(n % grid[1]);
            const double x = xy ? c : r, y = xy ? r : c;  // timm's t_x, t_y
            T* sin_row = tables.sin.data() + (h * N + n) * P;
            T* cos_row = tables.cos.data() + (h * N + n) * P;
            for (Index p = 0; p < P; ++p) {
                const double ax =
                    detail::round_to_float(x * detail::round_to_float(static_cast<double>(fx[p])));
                const double ay =
                    detail::round_to_float(y * detail::round_to_float(static_cast<double>(fy[p])));
                const double angle = detail::round_to_float(ax + ay);
                sin_row[p] = static_cast<T>(static_cast<float>(std::sin(angle)));
                cos_row[p] = static_cast<T>(static_cast<float>(std::cos(angle)));
            }
        }
    }
    return tables;
}

// The tables converted to another type: each value rounded once (see "Precision" above for the float32
// tables of float64 timm models).
template <class To, class From>
RotaryTables<To> cast_rotary_tables(const RotaryTables<From>& tables) {
    RotaryTables<To> out{Tensor<To>::empty(tables.sin.shape()), Tensor<To>::empty(tables.cos.shape()),
                         tables.rotate_half};
    std::transform(tables.sin.data(), tables.sin.data() + tables.sin.size(), out.sin.data(),
                   [](From v) { return static_cast<To>(v); });
    std::transform(tables.cos.data(), tables.cos.data() + tables.cos.size(), out.cos.data(),
                   [](From v) { return static_cast<To>(v); });
    return out;
}

// The checks of apply_rotary_embedding: `rows` (but for its buffer) and `prefix` fit `tables`. Returns false
// when there is nothing to rotate.
template <class T>
bool check_rotary_embedding(const RotaryRows<T>& rows, Index prefix, const RotaryTables<T>& tables) {
    const char* op = "vit3d::nn::apply_rotary_embedding";
    const Tensor<T>& sin = tables.sin;
    const Tensor<T>& cos = tables.cos;
    if (sin.rank() != 3 || sin.shape() != cos.shape())
        throw shape_error(message(op,
                                  ": expected sin and cos tables [heads or 1, N, head_dim / 2] of one shape, "
                                  "got sin ",
                                  sin.shape(), ", cos ", cos.shape()));
    const Index P = sin.dim(2), patches = rows.tokens - prefix;
    if (rows.batch < 0 || rows.heads < 1 || rows.head_dim != 2 * P)
        throw shape_error(message(op, ": expected rows of heads >= 1 heads of head_dim ", 2 * P,
                                  " (twice the tables' last axis), got batch ", rows.batch, ", ", rows.heads,
                                  " heads of head_dim ", rows.head_dim));
    if (sin.dim(0) != 1 && sin.dim(0) != rows.heads)
        throw shape_error(
            message(op, ": expected tables for 1 or ", rows.heads, " heads, got sin ", sin.shape()));
    if (prefix < 0 || patches != sin.dim(1))
        throw shape_error(message(op, ": expected ", sin.dim(1), " patch tokens after ", prefix,
                                  " prefix tokens (tables ", sin.shape(), "), got ", rows.tokens, " tokens"));
    const Index width = rows.heads * rows.head_dim;
    if ((rows.tokens > 1 && rows.token_stride < width) ||
        (rows.batch > 1 && rows.batch_stride < rows.tokens * rows.token_stride))
        throw shape_error(message(op, ": expected rows that do not overlap, token_stride >= ", width,
                                  " and batch_stride >= tokens * token_stride, got token_stride ",
                                  rows.token_stride, " and batch_stride ", rows.batch_stride, " for ",
                                  rows.tokens, " tokens"));
    return rows.batch > 0 && patches > 0 && P > 0;
}

// Rotates pairs [first, last) of one head's row x (head h of patch token n) by the tables, as timm's
// apply_rot_embed_cat: pair (x0, x1) becomes (x0 cos - x1 sin, x1 cos + x0 sin). Pair p is (2p, 2p + 1)
// interleaved, (p, p + head_dim / 2) in halves (rotate_half).
template <class T>
void rotate_head_pairs(T* x, const RotaryTables<T>& tables, Index h, Index n, Index first, Index last) {
    const Index P = tables.sin.dim(2), patches = tables.sin.dim(1);
    const Index at = (tables.sin.dim(0) == 1 ? 0 : h * patches * P) + n * P;
    const T* s = tables.sin.data() + at;
    const T* c = tables.cos.data() + at;
    const bool half = tables.rotate_half;
    const Index step = half ? 1 : 2, second = half ? P : 1;
    for (Index p = first; p < last; ++p) {
        T& x0 = x[p * step];
        T& x1 = x[p * step + second];
        const T a = x0, d = x1;
        x0 = a * c[p] - d * s[p];
        x1 = d * c[p] + a * s[p];
    }
}

// Rotates, in place, the patch tokens of `rows` (its tokens from `prefix` on; the first `prefix`, class and
// register tokens, keep their values) by `tables`, whose row n is patch token prefix + n (rotate_head_pairs).
template <class T>
void apply_rotary_embedding(const RotaryRows<T>& rows, Index prefix, const RotaryTables<T>& tables) {
    if (!check_rotary_embedding(rows, prefix, tables)) return;
    if (rows.data == nullptr)
        throw shape_error("vit3d::nn::apply_rotary_embedding: expected a buffer, got a null pointer");
    const Index P = tables.sin.dim(2), patches = rows.tokens - prefix;
    const Index width = rows.heads * rows.head_dim;
    detail::parallel_for(
        rows.batch * patches, std::max<Index>(1, 4096 / width), [&](Index first, Index last) {
            for (Index item = first; item < last; ++item) {
                const Index b = item / patches, n = item % patches;
                T* token = rows.data + b * rows.batch_stride + (prefix + n) * rows.token_stride;
                for (Index h = 0; h < rows.heads; ++h)
                    rotate_head_pairs(token + h * rows.head_dim, tables, h, n, 0, P);
            }
        });
}

}  // namespace vit3d::nn
