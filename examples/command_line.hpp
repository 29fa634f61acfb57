#pragma once
// The small argument-parsing and timing helpers the examples share. Their inputs are prepared by the library
// (vit3d/io/model_input.hpp), as vit3d-infer prepares them.

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace vit3d_examples {

// A command-line mistake: main() prints "<example>: <message>" and exits with 2.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// The value after option argv[i] (advancing i), or a usage_error naming the option.
inline std::string option_value(int argc, char** argv, int& i) {
    if (i + 1 >= argc) throw usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
}

// An integer in [low, high] from the value after option argv[i].
inline long option_integer(int argc, char** argv, int& i, long low, long high) {
    const std::string option = argv[i], text = option_value(argc, argv, i);
    std::size_t used = 0;
    long n = 0;
    try {
        n = std::stol(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || n < low || n > high)
        throw usage_error(option + " expects an integer in [" + std::to_string(low) + ", " +
                          std::to_string(high) + "], got \"" + text + "\"");
    return n;
}

// Milliseconds since t, for the examples' timing lines.
inline double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// An example's main(): run(parse(argc, argv)), with a usage_error printed as "<name>: <message>" and exit
// code 2, any other error the same way with exit code 1.
template <class Parse, class Run>
int run_main(const char* name, int argc, char** argv, Parse parse, Run run) {
    try {
        return run(parse(argc, argv));
    } catch (const usage_error& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        return 1;
    }
}

}  // namespace vit3d_examples
