#pragma once
// SHA-256 through OpenSSL's libcrypto (Debian: libssl-dev), which uses the CPU's SHA instructions where
// there are any. SHA-256 rather than a faster non-cryptographic hash so that an output's record names its
// weights file by the digest that `sha256sum` prints and that model hubs publish for their files: a user
// can tie an output to a published file without vit3d.

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "vit3d/core/message.hpp"
#include "vit3d/formats/read_file.hpp"

namespace vit3d_infer {

using vit3d::message;

class Sha256 {
  public:
    Sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
        if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("SHA-256: OpenSSL could not start a digest");
    }

    void update(const void* data, std::size_t size) {
        if (size > 0 && EVP_DigestUpdate(context_.get(), data, size) != 1)
            throw std::runtime_error(message("SHA-256: OpenSSL could not digest ", size, " bytes"));
    }

    // The digest as 64 lowercase hex digits, as sha256sum prints it. Ends this digest.
    std::string hex() {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        if (EVP_DigestFinal_ex(context_.get(), digest, &length) != 1)
            throw std::runtime_error("SHA-256: OpenSSL could not finish the digest");
        static const char digits[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < length; ++i) {
            out += digits[digest[i] >> 4];
            out += digits[digest[i] & 15];
        }
        return out;
    }

  private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

inline std::string sha256_hex(const void* data, std::size_t size) {
    Sha256 digest;
    digest.update(data, size);
    return digest.hex();
}

struct FileDigest {
    std::uint64_t bytes = 0;
    std::string sha256;
};

// The SHA-256 of a file's bytes, read in blocks of 1 MiB (a weights file of gigabytes is never held whole).
// Throws std::runtime_error naming the file and the system's reason when it cannot be read.
inline FileDigest sha256_of_file(const std::string& path) {
    const auto fail = [&](const char* what, int error) {
        return std::runtime_error(message("SHA-256 of ", vit3d::detail::quoted_path(path), ": ", what, ": ",
                                          std::generic_category().message(error)));
    };
    std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw fail("cannot open it", errno);
    Sha256 digest;
    FileDigest out;
    std::vector<unsigned char> block(std::size_t(1) << 20);
    for (;;) {
        const std::size_t n = std::fread(block.data(), 1, block.size(), file.get());
        digest.update(block.data(), n);
        out.bytes += n;
        if (n < block.size()) {
            if (std::ferror(file.get())) throw fail("cannot read it", errno);
            break;
        }
    }
    out.sha256 = digest.hex();
    return out;
}

// A model's digest: its file's, or for a Hugging Face model folder the SHA-256 of the list of the files the
// model is read from (config.json, preprocessor_config.json, the safetensors files and their index), one line
// "<sha256>  <name>" each in name order, as `sha256sum` prints them; bytes are the files' total. A change to
// any of those files changes it; the folder's other files (a tokenizer) do not.
inline FileDigest sha256_of_model(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return sha256_of_file(path);
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
        const std::string name = entry.path().filename().string();
        const auto ends_with = [&](const std::string& tail) {
            return name.size() >= tail.size() &&
                   name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
        };
        if (entry.is_regular_file(ec) && (name == "config.json" || name == "preprocessor_config.json" ||
                                          ends_with(".safetensors") || ends_with(".safetensors.index.json")))
            names.push_back(name);
    }
    if (ec)
        throw std::runtime_error(message("SHA-256 of ", vit3d::detail::quoted_path(path),
                                         ": cannot list the folder: ", ec.message()));
    std::sort(names.begin(), names.end());
    std::string listing;
    FileDigest out;
    for (const std::string& name : names) {
        const FileDigest file = sha256_of_file((fs::path(path) / name).string());
        listing += file.sha256 + "  " + name + "\n";
        out.bytes += file.bytes;
    }
    out.sha256 = sha256_hex(listing.data(), listing.size());
    return out;
}

}  // namespace vit3d_infer
