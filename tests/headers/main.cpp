// The program behind the headers.standalone test: it links one translation unit per public header (see
// CMakeLists.txt next to this file), so building it is the test; running it reports how many were covered.
#include <cstdio>

int main() {
    std::printf("%d public headers compile on their own and link together\n", VIT3D_HEADER_COUNT);
    return 0;
}
