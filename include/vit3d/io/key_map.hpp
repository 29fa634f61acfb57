#pragma once
// How one library names the tensors of its state_dict, as rename rules onto vit3d's parameter names. Each
// model family keeps its table in io/key_maps/<family>.hpp; io::load_state_dict applies one of them.

#include <initializer_list>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace vit3d::io {

// Ordered rename rules, compiled once when the map is built (the built-in maps are function-local statics,
// so a program compiles only the maps it uses, each once). The first rule whose pattern (ECMAScript regex)
// matches a key renames it, replacing the matched part ($1 refers to a group); an empty replacement marks
// a tensor that has no vit3d parameter and is skipped; a key no rule matches keeps its name.
class KeyMap {
  public:
    struct Rule {
        const char* pattern;
        const char* replacement;
    };

    KeyMap(std::string name, std::initializer_list<Rule> rules) : name_(std::move(name)) {
        for (const Rule& rule : rules) rules_.push_back({std::regex(rule.pattern), rule.replacement});
    }
    KeyMap(std::string name, const std::vector<Rule>& rules) : name_(std::move(name)) {
        for (const Rule& rule : rules) rules_.push_back({std::regex(rule.pattern), rule.replacement});
    }

    // The family, for messages ("torchvision").
    const std::string& name() const { return name_; }

    // The vit3d name of a state_dict key, or "" when vit3d has no such parameter and skips it.
    std::string rename(const std::string& key) const {
        for (const CompiledRule& rule : rules_) {
            if (!std::regex_search(key, rule.pattern)) continue;
            if (rule.replacement.empty()) return "";
            return std::regex_replace(key, rule.pattern, rule.replacement,
                                      std::regex_constants::format_first_only);
        }
        return key;
    }

  private:
    struct CompiledRule {
        std::regex pattern;
        std::string replacement;
    };
    std::string name_;
    std::vector<CompiledRule> rules_;
};

}  // namespace vit3d::io
