// Large buffers are advised for transparent huge pages (core/huge_pages.hpp), small ones and switched-off
// ones are not. What the kernel made of the advice is read from /proc/self/smaps: the "hg" VmFlag of the
// mapping that holds a buffer says madvise(MADV_HUGEPAGE) reached it, whatever the system's THP setting.

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vit3d/core/huge_pages.hpp>
#include <vit3d/tensor/tensor.hpp>

namespace {

// The VmFlags of the mapping of /proc/self/smaps that contains `address`; empty if none was found.
std::string vm_flags_at(const void* address) {
    std::ifstream smaps("/proc/self/smaps");
    const auto target = reinterpret_cast<std::uintptr_t>(address);
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        std::uintptr_t begin = 0, end = 0;
        char dash = 0;
        std::istringstream range(line);
        if (range >> std::hex >> begin >> dash >> end && dash == '-') {
            inside = begin <= target && target < end;
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line.substr(8);
        }
    }
    return {};
}

bool advised(const void* address) {
    const std::string flags = vm_flags_at(address);
    return (" " + flags + " ").find(" hg ") != std::string::npos;
}

class HugePages : public ::testing::Test {
  protected:
    void SetUp() override {
#if !defined(__linux__)
        GTEST_SKIP() << "huge-page advice is Linux-only";
#else
        if (vm_flags_at(&probe_).empty()) GTEST_SKIP() << "/proc/self/smaps has no VmFlags here";
        // A kernel built without transparent huge pages refuses the advice (EINVAL): nothing to see.
        if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"))
            GTEST_SKIP() << "this kernel has no transparent huge pages";
#endif
    }
    void TearDown() override { vit3d::set_huge_pages(true); }
    int probe_ = 0;
};

TEST_F(HugePages, LargeTensorsAreAdvisedWhenOn) {
    vit3d::set_huge_pages(true);
    const auto t = vit3d::Tensor<float>::empty({4, 1024, 1024});  // 16 MiB
    EXPECT_TRUE(advised(t.data() + t.size() / 2)) << vm_flags_at(t.data() + t.size() / 2);
    const auto z = vit3d::Tensor<float>::zeros({4, 1024, 1024});  // calloc'd
    EXPECT_TRUE(advised(z.data() + z.size() / 2)) << vm_flags_at(z.data() + z.size() / 2);
}

TEST_F(HugePages, NothingIsAdvisedWhenOff) {
    vit3d::set_huge_pages(false);
    EXPECT_FALSE(vit3d::huge_pages());
    const auto t = vit3d::Tensor<float>::empty({4, 1024, 1024});
    EXPECT_FALSE(advised(t.data() + t.size() / 2)) << vm_flags_at(t.data() + t.size() / 2);
}

TEST(HugePagesSetting, ParsesOnAndOffAndNamesTheBadValue) {
    EXPECT_TRUE(vit3d::parse_huge_pages("on"));
    EXPECT_FALSE(vit3d::parse_huge_pages("off"));
    try {
        vit3d::parse_huge_pages("yes", "VIT3D_HUGE_PAGES");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()), "VIT3D_HUGE_PAGES: expected on or off, got 'yes'");
    }
}

}  // namespace
