#pragma once
// The demo's volume part (examples/demo/volume.cpp), called by examples/demo.cpp.

#include <string>

namespace demo {

// Reads the NIfTI volume at `path`, runs a random-weight 3D ViT over it, writes `out_dir`/mri_attention.png
// and prints a report; throws on any error.
void run_volume(const std::string& path, const std::string& out_dir);

}  // namespace demo
