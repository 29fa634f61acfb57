#pragma once
// Strict reading of a JSON object whose fields a schema fixes (the model description of load_model.hpp):
// every field must be present, have the expected type and range, and no other field may appear, so that a
// garbled or newer file fails with an io_error naming the field's path ("config.patch_size") instead of
// building a different model. Nullable fields are read as std::optional.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/io/safetensors.hpp"

namespace vit3d::detail {

class JsonFields {
  public:
    // `where` starts every message (it names the operation and the file); `path` names this object
    // ("config"; "" for the top level).
    JsonFields(const nlohmann::json& object, std::string where, std::string path)
        : object_(object), where_(std::move(where)), path_(std::move(path)) {
        if (!object_.is_object())
            throw io_error(message(where_, path_.empty() ? std::string("the description") : path_,
                                   ": expected a JSON object, got ", brief_json(object_)));
    }

    // The raw value of a required field.
    const nlohmann::json& value(const std::string& key) {
        read_.insert(key);
        const auto it = object_.find(key);
        if (it == object_.end()) throw io_error(message(where_, "missing field ", quoted(name(key))));
        return *it;
    }
    bool is_null(const std::string& key) { return value(key).is_null(); }
    bool has(const std::string& key) const { return object_.find(key) != object_.end(); }

    std::string string(const std::string& key) {
        const nlohmann::json& v = value(key);
        if (!v.is_string()) fail(key, "a string", v);
        return v.get<std::string>();
    }
    // One of `allowed`.
    std::string choice(const std::string& key, std::initializer_list<const char*> allowed) {
        const std::string s = string(key);
        std::string listing;
        for (const char* a : allowed) {
            if (s == a) return s;
            listing += (listing.empty() ? "" : ", ") + quoted(a);
        }
        throw io_error(message(where_, name(key), ": expected one of ", listing, ", got ", quoted(s)));
    }
    bool boolean(const std::string& key) {
        const nlohmann::json& v = value(key);
        if (!v.is_boolean()) fail(key, "true or false", v);
        return v.get<bool>();
    }
    Index integer(const std::string& key, Index min = std::numeric_limits<Index>::min()) {
        const nlohmann::json& v = value(key);
        Index out = 0;
        if (!to_index(v, out) || out < min)
            fail(key,
                 min == 0   ? "a non-negative integer"
                 : min == 1 ? "a positive integer"
                            : "an integer",
                 v);
        return out;
    }
    double number(const std::string& key) {
        const nlohmann::json& v = value(key);
        if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "a finite number", v);
        return v.get<double>();
    }
    // An array of `count` integers >= min (count 0: any length).
    std::vector<Index> integers(const std::string& key, std::size_t count, Index min) {
        const nlohmann::json& v = value(key);
        const std::string expected = message("an array of ", count ? message(count, " ") : std::string(),
                                             min >= 1 ? "positive integers" : "integers");
        if (!v.is_array() || (count && v.size() != count)) fail(key, expected, v);
        std::vector<Index> out;
        for (const nlohmann::json& item : v) {
            Index x = 0;
            if (!to_index(item, x) || x < min) fail(key, expected, v);
            out.push_back(x);
        }
        return out;
    }
    // An array of `count` finite numbers (count 0: any length).
    std::vector<double> numbers(const std::string& key, std::size_t count) {
        const nlohmann::json& v = value(key);
        const std::string expected =
            message("an array of ", count ? message(count, " ") : std::string(), "finite numbers");
        if (!v.is_array() || (count && v.size() != count)) fail(key, expected, v);
        std::vector<double> out;
        for (const nlohmann::json& item : v) {
            if (!item.is_number() || !std::isfinite(item.get<double>())) fail(key, expected, v);
            out.push_back(item.get<double>());
        }
        return out;
    }

    // The path of a nested object's field, for a JsonFields over it.
    std::string child(const std::string& key) const { return name(key); }
    const std::string& where() const { return where_; }
    const std::string& path() const { return path_; }

    // Every field of the object must have been read.
    void finish() const {
        for (const auto& item : object_.items())
            if (!read_.count(item.key()))
                throw io_error(message(where_, "unknown field ", quoted(name(item.key())),
                                       " (written by a newer exporter? this vit3d reads format version 1)"));
    }

    [[noreturn]] void fail(const std::string& key, const std::string& expected,
                           const nlohmann::json& got) const {
        throw io_error(message(where_, name(key), ": expected ", expected, ", got ", brief_json(got)));
    }

  private:
    std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

    static bool to_index(const nlohmann::json& v, Index& out) {
        if (v.is_number_unsigned()) {
            const std::uint64_t u = v.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) return false;
            out = static_cast<Index>(u);
            return true;
        }
        if (v.is_number_integer()) {
            out = static_cast<Index>(v.get<std::int64_t>());
            return true;
        }
        return false;
    }

    const nlohmann::json& object_;
    std::string where_;
    std::string path_;
    std::set<std::string> read_;
};

}  // namespace vit3d::detail
