#pragma once

// Kept by hand in step with project(VERSION ...) in CMakeLists.txt.
#define VIT3D_VERSION_MAJOR 0
#define VIT3D_VERSION_MINOR 1
#define VIT3D_VERSION_PATCH 0
#define VIT3D_VERSION_STRING "0.1.0"
