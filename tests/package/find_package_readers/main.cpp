// Built against an installed vit3d (see CMakeLists.txt next to this file): reads a .npy, a PNG and a
// .nii.gz through the installed vit3d::io, vit3d::image and vit3d::nifti targets, writes each to the
// directory given last, and reads the copies back.
#include <vit3d/formats/image.hpp>

#include <iostream>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: vit3d_find_package_readers_consumer <x.npy> <x.png> <x.nii.gz> <output dir>\n";
        return 2;
    }
    try {
        const std::string out = argv[4];
        const auto array = vit3d::io::read_npy<double>(argv[1]);
        vit3d::io::write_npy(out + "/consumer.npy", array);
        const auto image = vit3d::io::read_image<std::uint8_t>(argv[2], vit3d::io::ImageChannels::rgb);
        vit3d::io::write_png(out + "/consumer.png", image);
        const auto volume = vit3d::io::read_nifti<float>(argv[3]);
        vit3d::io::write_nifti(out + "/consumer.nii.gz", volume);
        if (vit3d::io::read_npy<double>(out + "/consumer.npy").shape() != array.shape() ||
            vit3d::io::read_image<std::uint8_t>(out + "/consumer.png").shape() != image.shape() ||
            vit3d::io::read_nifti<float>(out + "/consumer.nii.gz").data.shape() != volume.data.shape()) {
            std::cerr << "find_package readers consumer: a file read back with another shape\n";
            return 1;
        }
        std::cout << "read and wrote " << vit3d::shape_to_string(array.shape()) << ", "
                  << vit3d::shape_to_string(image.shape()) << " and "
                  << vit3d::shape_to_string(volume.data.shape()) << "\n";
    } catch (const std::exception& e) {
        std::cerr << "find_package readers consumer: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
