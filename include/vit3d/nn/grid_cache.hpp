#pragma once
// Values a model derives from its parameters for one patch grid (a position table resampled to the grid,
// the rotary tables of the grid), kept between forward passes so that a model run again and again at one
// input size derives them once.
//
// An entry is trusted only while the parameters it came from hold the values they held when it was made:
// it keeps a copy of them and compares (the sources are small: a position table, rotary frequencies), so
// writes through any pointer, copies and loads of other weights all invalidate it. forward() is const and
// may run on several threads at once: lookups are serialised by a mutex, and a caller holds its value by
// shared_ptr, so an entry replaced meanwhile stays alive while in use. The value is made outside the lock.

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

template <class T, class Value>
class GridCache {
  public:
    // The most grids kept; the least recently used one is dropped beyond it.
    static constexpr std::size_t capacity = 4;

    GridCache() = default;
    // A copied or moved model's parameters are other tensors: its cache starts empty.
    GridCache(const GridCache&) noexcept {}
    GridCache(GridCache&&) noexcept {}
    GridCache& operator=(const GridCache&) {
        clear();
        return *this;
    }
    GridCache& operator=(GridCache&&) {
        clear();
        return *this;
    }

    // The value for `grid`, made by make() unless an entry for the grid exists whose sources still hold the
    // values they held when it was made.
    template <class Make>
    std::shared_ptr<const Value> get(const std::vector<Index>& grid,
                                     const std::vector<const Tensor<T>*>& sources, Make&& make) const {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (auto it = entries_.begin(); it != entries_.end(); ++it)
                if (it->grid == grid && holds(*it, sources)) {
                    std::rotate(entries_.begin(), it, it + 1);  // most recently used first
                    return entries_.front().value;
                }
        }
        Entry entry{grid, {}, std::make_shared<const Value>(make())};
        for (const Tensor<T>* s : sources) entry.snapshot.emplace_back(s->data(), s->data() + s->size());
        std::lock_guard<std::mutex> lock(mutex_);
        entries_.erase(
            std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.grid == grid; }),
            entries_.end());
        entries_.insert(entries_.begin(), std::move(entry));
        if (entries_.size() > capacity) entries_.pop_back();
        return entries_.front().value;
    }

    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return entries_.size();
    }

  private:
    struct Entry {
        std::vector<Index> grid;
        std::vector<std::vector<T>> snapshot;  // the sources' elements when the value was made
        std::shared_ptr<const Value> value;
    };

    // Bitwise, so that a NaN written in place of a NaN is no change and -0 in place of 0 is one.
    static bool holds(const Entry& e, const std::vector<const Tensor<T>*>& sources) {
        if (e.snapshot.size() != sources.size()) return false;
        for (std::size_t i = 0; i < sources.size(); ++i) {
            const std::vector<T>& was = e.snapshot[i];
            if (static_cast<Index>(was.size()) != sources[i]->size() ||
                std::memcmp(was.data(), sources[i]->data(), was.size() * sizeof(T)) != 0)
                return false;
        }
        return true;
    }

    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        entries_.clear();
    }

    mutable std::mutex mutex_;
    mutable std::vector<Entry> entries_;
};

}  // namespace vit3d::nn
