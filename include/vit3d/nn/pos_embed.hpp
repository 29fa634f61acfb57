#pragma once
// Positional embeddings added to patch tokens.
//
//   - LearnedPosEmbed: one learned row per token, [1, N (+ prefix), D] as torchvision/timm store it
//     (prefix rows, e.g. the class token's, first).
//   - FactorizedPosEmbed3d: the Reg2RG / RadFM PositionEmbeddingLearned3d: three learned tables for the
//     three grid axes, concatenated per token as [row(a0) | col(a1) | dep(a2)], D = 3F. For a grid smaller
//     than the tables it reads rows (i + 1) * (table / grid) - 1, the last row of each stride group, as
//     the reference does.
//   - sincos_position_embedding: fixed sin-cos tables in the exact variants of MAE/MONAI and vit-pytorch
//     (they differ in frequency denominators, block order and padding; see SinCosVariant).

#include <array>
#include <cmath>
#include <string>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

// x [B, N, D] + table [1, N, D] (or [N, D]).
template <class T>
struct LearnedPosEmbed {
    Tensor<T> table;  // [1, N, D]; its parameter name is the name given to visit_parameters ("pos_embed")

    Tensor<T> forward(const Tensor<T>& x) const { return add(x, table); }

    // x + table, for x [B, N, D] and a table [1, N, D] or [N, D] (this one, or one resampled to x's grid).
    static Tensor<T> add(const Tensor<T>& x, const Tensor<T>& table) {
        const bool fits =
            x.rank() == 3 && ((table.rank() == 3 && table.dim(0) == 1 && table.dim(1) == x.dim(1) &&
                               table.dim(2) == x.dim(2)) ||
                              (table.rank() == 2 && table.dim(0) == x.dim(1) && table.dim(1) == x.dim(2)));
        if (!fits)
            throw shape_error(
                message("vit3d::nn::LearnedPosEmbed::forward: expected tokens [B, N, D] matching the table ",
                        table.shape(), ", got ", x.shape(), " (resample the table for other grid sizes)"));
        return x + table;
    }

    template <class F>
    void visit_parameters(F&& f, const std::string& name = "pos_embed") {
        f(name, table);
    }
    template <class F>
    void visit_parameters(F&& f, const std::string& name = "pos_embed") const {
        f(name, table);
    }
};

template <class T>
struct FactorizedPosEmbed3d {
    Tensor<T> row_embed;  // [n0, F] ("<prefix>.row_embed.weight")
    Tensor<T> col_embed;  // [n1, F] ("<prefix>.col_embed.weight")
    Tensor<T> dep_embed;  // [n2, F] ("<prefix>.dep_embed.weight")

    FactorizedPosEmbed3d() = default;
    FactorizedPosEmbed3d(Index features, std::array<Index, 3> table_sizes)
        : row_embed(Shape{table_sizes[0], features}),
          col_embed(Shape{table_sizes[1], features}),
          dep_embed(Shape{table_sizes[2], features}) {}

    Index features() const { return row_embed.dim(1); }

    // The embedding [1, g0*g1*g2, 3F] of a grid, tokens row-major (a0 slowest).
    Tensor<T> embedding(const std::array<Index, 3>& grid) const {
        const char* op = "vit3d::nn::FactorizedPosEmbed3d";
        const Tensor<T>* tables[3] = {&row_embed, &col_embed, &dep_embed};
        const Index F = features();
        std::array<std::vector<Index>, 3> rows;
        for (int a = 0; a < 3; ++a) {
            const Index n = tables[a]->dim(0);
            if (tables[a]->rank() != 2 || tables[a]->dim(1) != F)
                throw shape_error(
                    message(op, ": expected three tables [n, ", F, "], got ", tables[a]->shape()));
            if (grid[a] < 1 || grid[a] > n)
                throw shape_error(
                    message(op, ": grid axis ", a, " has ", grid[a], " patches, the table holds 1 to ", n));
            for (Index i = 0; i < grid[a]; ++i) rows[a].push_back((i + 1) * (n / grid[a]) - 1);
        }
        Tensor<T> pos = Tensor<T>::empty({1, grid[0] * grid[1] * grid[2], 3 * F});
        T* out = pos.data();
        for (Index i : rows[0])
            for (Index j : rows[1])
                for (Index k : rows[2]) {
                    out = std::copy_n(row_embed.data() + i * F, F, out);
                    out = std::copy_n(col_embed.data() + j * F, F, out);
                    out = std::copy_n(dep_embed.data() + k * F, F, out);
                }
        return pos;
    }

    // x [B, g0*g1*g2, 3F] + embedding(grid)
    Tensor<T> forward(const Tensor<T>& x, const std::array<Index, 3>& grid) const {
        const Tensor<T> pos = embedding(grid);
        if (x.rank() != 3 || x.dim(1) != pos.dim(1) || x.dim(2) != pos.dim(2))
            throw shape_error(message("vit3d::nn::FactorizedPosEmbed3d::forward: expected tokens [B, ",
                                      pos.dim(1), ", ", pos.dim(2), "], got ", x.shape()));
        return x + pos;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "row_embed.weight"), self.row_embed);
        f(join_name(prefix, "col_embed.weight"), self.col_embed);
        f(join_name(prefix, "dep_embed.weight"), self.dep_embed);
    }
};

// Which reference's sin-cos table to reproduce. With grid axes a0 (slowest token axis) ... and
// k = 0 .. K-1 frequencies per block:
//   - mae_monai:   omega_k = 10000^(-k / K), K = D / (2 * axes), D must divide exactly (MAE
//                  get_2d_sincos_pos_embed, MONAI build_sincos_position_embedding). Blocks
//                  2D: [sin a1 | cos a1 | sin a0 | cos a0];  3D: [sin a1 | cos a1 | sin a0 | cos a0 | sin a2
//                  | cos a2].
//   - vit_pytorch: omega_k = 10000^(-k / (K - 1)), K = D / (2 * axes) rounded down, rest zero-padded
//                  (posemb_sincos_2d / posemb_sincos_3d). Blocks 2D: [sin a1 | cos a1 | sin a0 | cos a0];
//                  3D: [sin a2 | cos a2 | sin a1 | cos a1 | sin a0 | cos a0].
enum class SinCosVariant { mae_monai, vit_pytorch };

constexpr auto enum_names(SinCosVariant) {
    return enum_table<SinCosVariant>(
        {{SinCosVariant::mae_monai, "mae_monai"}, {SinCosVariant::vit_pytorch, "vit_pytorch"}});
}

// The table [1, prod(grid), D] for a 2D or 3D grid, computed in double and rounded once to T.
template <class T, std::size_t Axes>
Tensor<T> sincos_position_embedding(const std::array<Index, Axes>& grid, Index dim, SinCosVariant variant,
                                    double temperature = 10000.0) {
    static_assert(Axes == 2 || Axes == 3, "sin-cos tables are 2D or 3D");
    const char* op = "vit3d::nn::sincos_position_embedding";
    const Index K = dim / (2 * static_cast<Index>(Axes));
    if (variant == SinCosVariant::mae_monai && dim % (2 * static_cast<Index>(Axes)) != 0)
        throw shape_error(
            message(op, ": the MAE/MONAI table needs dim divisible by ", 2 * Axes, ", got ", dim));
    if (K < 1 || (variant == SinCosVariant::vit_pytorch && K < 2))
        throw shape_error(message(op, ": dim ", dim, " is too small for ", Axes, " axes"));
    std::array<std::size_t, Axes> blocks{};  // which grid axis each block pair encodes
    if constexpr (Axes == 2) {
        blocks = {1, 0};
    } else if (variant == SinCosVariant::mae_monai) {
        blocks = {1, 0, 2};
    } else {
        blocks = {2, 1, 0};
    }
    std::vector<double> omega(static_cast<std::size_t>(K));
    const double denominator = variant == SinCosVariant::mae_monai ? double(K) : double(K - 1);
    for (Index k = 0; k < K; ++k)
        omega[static_cast<std::size_t>(k)] = std::pow(temperature, -double(k) / denominator);

    Index tokens = 1;
    for (Index g : grid) tokens *= g;
    Tensor<T> pos({1, tokens, dim});  // zero padding beyond 2 * Axes * K
    std::array<Index, Axes> index{};
    for (Index t = 0; t < tokens; ++t) {
        for (Index rest = t, a = static_cast<Index>(Axes) - 1; a >= 0; --a) {
            index[static_cast<std::size_t>(a)] = rest % grid[static_cast<std::size_t>(a)];
            rest /= grid[static_cast<std::size_t>(a)];
        }
        T* row = pos.data() + t * dim;
        for (std::size_t b = 0; b < Axes; ++b) {
            const double coordinate = static_cast<double>(index[blocks[b]]);
            for (Index k = 0; k < K; ++k) {
                row[(2 * b) * K + k] =
                    static_cast<T>(std::sin(coordinate * omega[static_cast<std::size_t>(k)]));
                row[(2 * b + 1) * K + k] =
                    static_cast<T>(std::cos(coordinate * omega[static_cast<std::size_t>(k)]));
            }
        }
    }
    return pos;
}

}  // namespace vit3d::nn

#define VIT3D_POS_EMBED_INSTANCES(X, T)     \
    X(struct vit3d::nn::LearnedPosEmbed<T>) \
    X(struct vit3d::nn::FactorizedPosEmbed3d<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_POS_EMBED_INSTANCES)
