#pragma once
// A view of a TensorSource in which some tensors are made of rows of others: Hugging Face's separate
// query, key and value projections [D, D] each become one [3D, D] "qkv" tensor (vit3d's fused projection,
// one GEMM instead of three), and SigLIP's pooling head's in_proj [3D, D] becomes "q" [D, D] and "kv"
// [2D, D]. The tensors a made one reads are hidden; every other tensor passes through unchanged.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/io/tensor_source.hpp"

namespace vit3d::io::huggingface {

class AssembledTensors final : public TensorSource {
  public:
    // Rows [first, first + count) of the source tensor `name` (its first axis).
    struct Rows {
        std::string name;
        Index first = 0;
        Index count = 0;
    };

    explicit AssembledTensors(const TensorSource& source) : source_(source) {}

    // Declares `name` as the concatenation of `pieces` along the first axis; the pieces' other axes must
    // agree. Throws io_error naming the tensors when a piece is missing or does not fit.
    void assemble(const std::string& name, std::vector<Rows> pieces) {
        const std::string where =
            message("vit3d::io::huggingface: ", source_.source_name(), ": tensor ", quoted_name(name), ": ");
        Shape shape;
        for (const Rows& piece : pieces) {
            const Shape s = source_.shape(piece.name);  // throws naming a missing tensor
            if (s.empty() || piece.first < 0 || piece.count < 0 || piece.first + piece.count > s[0])
                throw io_error(message(where, "expected rows [", piece.first, ", ", piece.first + piece.count,
                                       ") of ", quoted_name(piece.name), ", which has shape ", s));
            const Shape rest(s.begin() + 1, s.end());
            if (shape.empty()) {
                shape = s;
                shape[0] = 0;
            } else if (rest != Shape(shape.begin() + 1, shape.end())) {
                throw io_error(message(where, "its pieces disagree: ", quoted_name(piece.name), " has shape ",
                                       s, ", the first piece's rows have shape ",
                                       Shape(shape.begin() + 1, shape.end())));
            }
            shape[0] += piece.count;
            hidden_.insert(piece.name);
        }
        made_[name] = {shape, std::move(pieces)};
    }

    const std::string& source_name() const noexcept override { return source_.source_name(); }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        for (const std::string& name : source_.names())
            if (!hidden_.count(name)) out.push_back(name);
        for (const auto& entry : made_) out.push_back(entry.first);
        std::sort(out.begin(), out.end());
        return out;
    }
    bool contains(const std::string& name) const override {
        return made_.count(name) || (!hidden_.count(name) && source_.contains(name));
    }
    Shape shape(const std::string& name) const override {
        const auto it = made_.find(name);
        return it != made_.end() ? it->second.shape : source_.shape(name);
    }
    void get_into(const std::string& name, float* dst, Index count) const override {
        assemble_into(name, dst, count);
    }
    void get_into(const std::string& name, double* dst, Index count) const override {
        assemble_into(name, dst, count);
    }
    void release(const std::string& name) const override {
        const auto it = made_.find(name);
        if (it == made_.end()) return source_.release(name);
        for (const Rows& piece : it->second.pieces) source_.release(piece.name);
    }

  private:
    struct Made {
        Shape shape;
        std::vector<Rows> pieces;
    };

    static std::string quoted_name(const std::string& name) { return message("\"", name, "\""); }

    template <class T>
    void assemble_into(const std::string& name, T* dst, Index count) const {
        const auto it = made_.find(name);
        if (it == made_.end()) return source_.get_into(name, dst, count);
        const Made& made = it->second;
        if (shape_numel(made.shape) != count)
            throw io_error(message("vit3d::io::huggingface: ", source_.source_name(), ": tensor ",
                                   quoted_name(name), " of shape ", made.shape, " has ",
                                   shape_numel(made.shape), " elements, expected ", count));
        const Index row = made.shape[0] > 0 ? count / made.shape[0] : 0;
        std::vector<T> whole;
        for (const Rows& piece : made.pieces) {
            const Index rows = source_.shape(piece.name)[0];
            if (piece.first == 0 && piece.count == rows) {  // the whole tensor: straight into place
                source_.get_into(piece.name, dst, piece.count * row);
            } else {
                whole.resize(static_cast<std::size_t>(rows * row));
                source_.get_into(piece.name, whole.data(), rows * row);
                std::copy_n(whole.data() + piece.first * row, piece.count * row, dst);
            }
            dst += piece.count * row;
        }
    }

    const TensorSource& source_;
    std::map<std::string, Made> made_;
    std::set<std::string> hidden_;
};

}  // namespace vit3d::io::huggingface
