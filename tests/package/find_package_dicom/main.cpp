// Reads the DICOM series in argv[1] through the installed vit3d::dicom and checks what it read: the
// fixture tests/fixtures/dicom/ct_axial is 7 slices of 12 x 10, CT, in Hounsfield units.
#include <cstdint>
#include <cstdio>
#include <vit3d/dicom/series.hpp>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s SERIES_FOLDER\n", argv[0]);
        return 2;
    }
    const vit3d::dicom::SeriesVolume<std::int16_t> ct = vit3d::dicom::read_series<std::int16_t>(argv[1]);
    std::printf("%s %s\n", vit3d::message(ct.volume.data.shape()).c_str(), ct.facts.modality.c_str());
    const bool ok = ct.volume.data.shape() == vit3d::Shape{7, 12, 10} && ct.facts.modality == "CT" &&
                    ct.volume.data(0, 0, 0) == 311 * 6 - 1000 - 1024;
    return ok ? 0 : 1;
}
