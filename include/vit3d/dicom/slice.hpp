#pragma once
// One DICOM file as a slice of a series (CMake target vit3d::dicom, which links GDCM): what the series
// reader (vit3d/dicom/series.hpp) needs of its header, and its pixels decoded. vit3d walks the file's
// elements and reads the attributes it uses from their bytes itself, checking each, so that a malformed
// value is refused with its name rather than taken as a default; GDCM decodes the pixel data, in the
// transfer syntaxes it knows (uncompressed, RLE, JPEG baseline and lossless, JPEG-LS, JPEG 2000). Debian's
// GDCM keeps its assertions, which abort on malformed files: vit3d checks the file's structure, image
// attributes and compressed frame header first, and gives GDCM only the attributes it reads
// (DicomStructure below). Parsing a header without decoding never runs GDCM.
//
// A file is read from memory (the bytes of a file read whole), through the same code for files and for
// the fuzzer. Only DICOM Part 10 files are read: the 128-byte preamble and "DICM" first; the series
// reader skips other files in a folder.
//
// GDCM writes warnings and errors to std::cerr unless told otherwise; a library must not print, so the
// first decoding turns GDCM's trace output off (gdcm::Trace, a process-wide setting of GDCM). GDCM's copy
// of libjpeg still writes "Corrupt JPEG data: ..." for corrupt JPEG scan data.

#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmMediaStorage.h>
#include <gdcmTrace.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <istream>
#include <optional>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/read_file.hpp"

namespace vit3d::dicom {

// What the series reader uses of one file. Strings are the values as stored, without DICOM's padding
// (trailing spaces and NULs); an absent attribute is an empty string, an empty vector or nullopt.
struct Slice {
    std::string source;  // the path or name the bytes came from, for messages
    // Identity.
    std::string series_uid;  // SeriesInstanceUID (0020,000E): required
    std::string study_uid;   // StudyInstanceUID (0020,000D)
    std::string sop_instance_uid, sop_class_uid;
    std::string frame_of_reference_uid;
    std::string modality;            // (0008,0060): CT, MR, PT, ...
    std::string series_description;  // (0008,103E)
    std::string transfer_syntax;     // the file meta information's (0002,0010)
    std::optional<double> instance_number;
    // The image, as GDCM reads it.
    Index rows = 0, columns = 0, frames = 1;
    int samples_per_pixel = 1, bits_allocated = 0, bits_stored = 0, high_bit = 0;
    bool is_signed = false;   // PixelRepresentation 1
    std::string photometric;  // PhotometricInterpretation: MONOCHROME2, MONOCHROME1, RGB, ...
    // Geometry (patient coordinates, LPS, mm); empty when the file does not have it.
    std::vector<double> position;     // ImagePositionPatient (0020,0032): 3 values
    std::vector<double> orientation;  // ImageOrientationPatient (0020,0037): row cosines, column cosines
    std::vector<double>
        pixel_spacing;  // PixelSpacing (0028,0030): row spacing (between rows), column spacing
    std::optional<double> slice_thickness, spacing_between_slices;
    // Values: real = slope * stored + intercept (1 and 0 when the file has no rescale).
    double rescale_slope = 1.0, rescale_intercept = 0.0;
    bool has_rescale = false;
    std::vector<double> window_center, window_width;
    // The stored values as numbers, [frames, rows, columns] (x samples), when decoded: sign-extended or
    // masked to BitsStored.
    std::vector<double> pixels;
};

}  // namespace vit3d::dicom

namespace vit3d::detail {

// A read-only std::streambuf over bytes in memory, with seeking: GDCM reads from a std::istream and seeks
// within it.
class MemoryStreamBuf : public std::streambuf {
  public:
    MemoryStreamBuf(const std::uint8_t* bytes, std::size_t size) {
        char* begin = const_cast<char*>(reinterpret_cast<const char*>(bytes));  // never written through
        setg(begin, begin, begin + size);
    }

  protected:
    pos_type seekoff(off_type offset, std::ios_base::seekdir dir, std::ios_base::openmode which) override {
        if (!(which & std::ios_base::in)) return pos_type(off_type(-1));
        const off_type base = dir == std::ios_base::beg   ? 0
                              : dir == std::ios_base::cur ? static_cast<off_type>(gptr() - eback())
                                                          : static_cast<off_type>(egptr() - eback());
        return seek_to(base, offset);
    }
    pos_type seekpos(pos_type position, std::ios_base::openmode which) override {
        if (!(which & std::ios_base::in)) return pos_type(off_type(-1));
        return seek_to(0, off_type(position));
    }

  private:
    pos_type seek_to(off_type base, off_type offset) {
        const off_type size = static_cast<off_type>(egptr() - eback());
        if ((offset > 0 && base > size - offset) || (offset < 0 && base < -offset))
            return pos_type(off_type(-1));
        const off_type target = base + offset;
        if (target < 0 || target > size) return pos_type(off_type(-1));
        setg(eback(), eback() + target, egptr());
        return pos_type(target);
    }
};

inline void quiet_gdcm() {
    static const bool once = [] {
        gdcm::Trace::DebugOff();
        gdcm::Trace::WarningOff();
        gdcm::Trace::ErrorOff();
        return true;
    }();
    (void)once;
}

inline bool has_dicom_magic(const std::uint8_t* bytes, std::size_t size) {
    return size >= 132 && std::memcmp(bytes + 128, "DICM", 4) == 0;
}

// A DICOM tag as "(gggg,eeee)", for messages.
inline std::string tag_text(std::uint16_t group, std::uint16_t element) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out = "(";
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(group >> shift) & 15];
    out += ',';
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(element >> shift) & 15];
    return out + ")";
}

// The element structure of a DICOM Part 10 file, checked before GDCM parses it. Debian's GDCM is built with
// its assertions on, and several of them fire on a truncated or malformed file (gdcmReader.cxx:385 and
// gdcmFileMetaInformation.cxx:375, 406, 436 and 591 when the file ends inside the meta information,
// gdcmSequenceOfFragments.cxx:120 when it ends inside encapsulated pixel data): abort() in the caller's
// process. So vit3d walks every element first (PS3.5 section 7: the meta information in explicit VR little
// endian, then the data set in the transfer syntax's encoding, into sequences, items and pixel data
// fragments) and refuses a file in which an element, an item or a fragment does not fit. It keeps the data
// set's own elements (not those in sequences), whose values parse_slice reads.
class DicomStructure {
    struct TopElement {
        std::uint32_t tag;
        std::size_t start, end;  // the whole element, header to end of value (or delimiter)
        std::size_t value;
        std::uint32_t length;  // or `undefined`
        char vr[2];            // explicit VR; zeros in implicit VR
    };

    // The attributes GDCM gets (for_gdcm), with their value representations: GDCM asserts that an
    // attribute's VR in the file agrees with its dictionary's (gdcmAttribute.h:445, found by fuzzing).
    struct Kept {
        std::uint32_t tag;
        const char* vr;  // "OB" or "OW" both for pixel data
    };
    static constexpr Kept kept_[] = {
        {0x00080016u, "UI"}, {0x00080018u, "UI"}, {0x00080060u, "CS"}, {0x0008103Eu, "LO"},
        {0x00180050u, "DS"}, {0x00180088u, "DS"}, {0x0020000Du, "UI"}, {0x0020000Eu, "UI"},
        {0x00200013u, "IS"}, {0x00200032u, "DS"}, {0x00200037u, "DS"}, {0x00200052u, "UI"},
        {0x00280002u, "US"}, {0x00280004u, "CS"}, {0x00280006u, "US"}, {0x00280008u, "IS"},
        {0x00280010u, "US"}, {0x00280011u, "US"}, {0x00280030u, "DS"}, {0x00280100u, "US"},
        {0x00280101u, "US"}, {0x00280102u, "US"}, {0x00280103u, "US"}, {0x00281050u, "DS"},
        {0x00281051u, "DS"}, {0x00281052u, "DS"}, {0x00281053u, "DS"}, {0x7FE00010u, "OW"}};
    static const Kept* kept(std::uint32_t tag) {
        for (const Kept& k : kept_)
            if (k.tag == tag) return &k;
        return nullptr;
    }

  public:
    DicomStructure(const std::uint8_t* bytes, std::size_t size, const std::string& where)
        : bytes_(bytes), size_(size), where_(where) {}

    // Walks the whole file; returns the transfer syntax UID of the meta information.
    std::string check() {
        std::size_t at = 132;  // after the preamble and "DICM"
        std::string syntax;
        while (at < size_ && at + 4 <= size_ && u16(at, false) == 0x0002) {
            const Element e = header(at, true, false, "file meta information");
            if (e.length == undefined)
                fail(at, "an element of the file meta information has an undefined length");
            end_of(e, "file meta information");
            if (e.tag == 0x00020010 || e.tag == 0x00020002) {
                std::string& uid = e.tag == 0x00020010 ? syntax : media_storage_;
                uid.assign(reinterpret_cast<const char*>(bytes_ + e.value), e.length);
                while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.pop_back();
            }
            at = e.value + e.length;
        }
        if (at >= size_) fail(at, "the file ends with its file meta information, before any data set");
        if (syntax.empty())
            throw io_error(message(where_,
                                   "expected the TransferSyntaxUID (0002,0010) in the file meta "
                                   "information, got none (truncated or not a DICOM file)"));
        if (syntax == "1.2.840.10008.1.2.1.99")
            throw io_error(message(where_,
                                   "transfer syntax \"1.2.840.10008.1.2.1.99\" (deflated explicit VR "
                                   "little endian) is not read"));
        const bool explicit_vr = syntax != "1.2.840.10008.1.2";
        const bool big_endian = syntax == "1.2.840.10008.1.2.2";
        data_set_ = at;
        big_ = big_endian;
        walk(at, size_, explicit_vr, big_endian, 0);
        std::vector<std::uint32_t> tags;
        for (const TopElement& e : top_) tags.push_back(e.tag);
        std::sort(tags.begin(), tags.end());
        const auto twice = std::adjacent_find(tags.begin(), tags.end());
        if (twice != tags.end())
            fail(data_set_, message("tag ",
                                    tag_text(static_cast<std::uint16_t>(*twice >> 16),
                                             static_cast<std::uint16_t>(*twice)),
                                    " appears more than once in the data set"));
        if (!has_pixel_data()) return syntax;
        for (const TopElement& e : top_) {
            const Kept* k = kept(e.tag);
            if (k == nullptr || e.vr[0] == 0) continue;
            const bool pixels = e.tag == 0x7FE00010u;
            const bool ok = pixels ? e.vr[0] == 'O' && (e.vr[1] == 'B' || e.vr[1] == 'W')
                                   : e.vr[0] == k->vr[0] && e.vr[1] == k->vr[1];
            if (!ok)
                fail(e.start, message("expected value representation ", pixels ? "OB or OW" : k->vr, " for ",
                                      tag_text(static_cast<std::uint16_t>(e.tag >> 16),
                                               static_cast<std::uint16_t>(e.tag)),
                                      ", got ", std::string(e.vr, 2)));
        }
        check_image_attributes();
        const bool jpeg2000 = syntax == "1.2.840.10008.1.2.4.90" || syntax == "1.2.840.10008.1.2.4.91" ||
                              syntax == "1.2.840.10008.1.2.4.92" || syntax == "1.2.840.10008.1.2.4.93";
        if (jpeg2000) check_jpeg2000();
        return syntax;
    }

    bool has_pixel_data() const { return find(0x7FE00010u) != nullptr; }

    // The file meta information's MediaStorageSOPClassUID (0002,0002), "" when absent.
    const std::string& media_storage() const { return media_storage_; }

    // The byte length of native (not encapsulated) pixel data; none when it is encapsulated.
    std::optional<std::uint64_t> native_pixel_length() const {
        const TopElement* e = find(0x7FE00010u);
        if (e == nullptr || e->length == undefined) return std::nullopt;
        return e->length;
    }
    // Items of the last encapsulated pixel data, its basic offset table included.
    std::size_t fragment_items() const { return fragments_.size(); }

    // The value of a US attribute of group 0028 (-1 when absent); refused unless it is one 2-byte value.
    Index us(std::uint16_t element) const {
        const TopElement* e = find(0x00280000u | element);
        if (e == nullptr) return -1;
        if (e->length != 2)
            throw io_error(message(
                where_, "expected ", tag_text(0x0028, element), " to hold one 2-byte value, got ",
                e->length == undefined ? std::string("an undefined length") : message(e->length, " bytes")));
        return u16(e->value, big_);
    }

    // A text attribute of the data set without its padding ("" when absent).
    std::string text(std::uint32_t tag) const {
        const TopElement* e = find(tag);
        if (e == nullptr || e->length == undefined) return "";
        std::string out(reinterpret_cast<const char*>(bytes_ + e->value), e->length);
        while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
        return out;
    }

    // The file as GDCM gets it: the preamble and meta information as they are, then only the data set's
    // elements vit3d reads (identity, geometry, the image pixel module, rescale, window, pixel data), in tag
    // order. GDCM's image reader also interprets overlays, curves, palettes, icon images, functional group
    // sequences and vendors' private rescale attributes, with assertions on their contents (found by
    // fuzzing: gdcmPixelFormat.h:94 and others in gdcmPixmapReader.cxx); vit3d uses none of them.
    std::vector<std::uint8_t> for_gdcm() const {
        std::vector<const TopElement*> elements;
        for (const TopElement& e : top_)
            if (kept(e.tag) != nullptr) elements.push_back(&e);
        std::stable_sort(elements.begin(), elements.end(),
                         [](const TopElement* a, const TopElement* b) { return a->tag < b->tag; });
        std::vector<std::uint8_t> out(bytes_, bytes_ + data_set_);
        for (const TopElement* e : elements) out.insert(out.end(), bytes_ + e->start, bytes_ + e->end);
        return out;
    }

    // The bytes of the last encapsulated pixel data's fragments joined (a single frame's codestream).
    std::vector<std::uint8_t> joined_fragments() const {
        std::vector<std::uint8_t> frame;
        for (std::size_t f = 1; f < fragments_.size(); ++f)
            frame.insert(frame.end(), bytes_ + fragments_[f].first,
                         bytes_ + fragments_[f].first + fragments_[f].second);
        return frame;
    }

    // GDCM decodes a JPEG 2000 codestream into a buffer sized by the DICOM header's rows, columns, samples
    // and BitsAllocated, but writes what the codestream's SIZ marker segment says (gdcmJPEG2000Codec.cxx,
    // DecodeByStreamsCommon; a heap overflow found by fuzzing): the two must agree.
    static bool jpeg2000_size_fits(const std::vector<std::uint8_t>& c, Index rows, Index columns, int samples,
                                   int bits_allocated) {
        const auto u16 = [&](std::size_t at) { return static_cast<std::uint32_t>(c[at] << 8 | c[at + 1]); };
        const auto u32 = [&](std::size_t at) { return u16(at) << 16 | u16(at + 2); };
        // SOC, then SIZ: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz,
        // components.
        if (c.size() < 42 || u16(0) != 0xFF4F || u16(2) != 0xFF51) return false;
        const std::uint32_t components = u16(40);
        if (components != static_cast<std::uint32_t>(samples) ||
            c.size() < 42 + 3 * std::size_t(components) || u16(4) < 38 + 3 * components)
            return false;
        const std::uint32_t x = u32(8), y = u32(12), x0 = u32(16), y0 = u32(20);
        if (x <= x0 || y <= y0 || x - x0 != static_cast<std::uint64_t>(columns) ||
            y - y0 != static_cast<std::uint64_t>(rows))
            return false;
        for (std::uint32_t k = 0; k < components; ++k) {
            const std::size_t at = 42 + 3 * std::size_t(k);
            if ((c[at] & 0x7F) + 1 > bits_allocated || c[at + 1] != 1 || c[at + 2] != 1) return false;
        }
        return true;
    }

    // GDCM's JPEG codec (gdcmJPEGBITSCodec.hxx, GetHeaderInfo and DecodeByStreams) asserts on any warning
    // of libjpeg while it reads the header (extraneous bytes before a marker: found by fuzzing), on more
    // than 16 bits, on component counts and colour spaces it does not expect, and on processes other than
    // baseline, extended and lossless; and it decodes into a buffer sized by the DICOM header. So vit3d
    // reads the header's marker segments up to the start of scan itself and lets through only what GDCM
    // handles and the DICOM header agrees with: segments back to back, one SOF0, SOF1 or SOF3 of one
    // component with the image's rows and columns and at most BitsAllocated bits, JFIF version 1.
    // JPEG-LS (ls = true) the same way, with its SOF55 of 2 to 16 bits and LSE segments: GDCM's JPEG-LS
    // codec asserts on more than 16 bits and leaks its copy of the frame when CharLS refuses the header.
    static bool jpeg_header_fits(const std::vector<std::uint8_t>& c, Index rows, Index columns,
                                 int bits_allocated, bool ls = false) {
        const auto u16 = [&](std::size_t at) { return static_cast<std::size_t>(c[at] << 8 | c[at + 1]); };
        if (c.size() < 4 || u16(0) != 0xFFD8) return false;
        std::size_t at = 2;
        bool frame = false;
        while (true) {
            while (at < c.size() && c[at] == 0xFF && at + 1 < c.size() && c[at + 1] == 0xFF)
                ++at;  // fill bytes
            if (c.size() - at < 4 || c[at] != 0xFF) return false;
            const unsigned marker = c[at + 1];
            const std::size_t length = u16(at + 2);
            if (length < 2 || length > c.size() - at - 2) return false;
            const std::size_t body = at + 4;
            if (marker == 0xDA) return frame && length >= 8;  // start of scan: the header is complete
            if (ls ? marker == 0xF7 : (marker == 0xC0 || marker == 0xC1 || marker == 0xC3)) {
                if (frame || length != 11) return false;  // one frame of one component
                const unsigned precision = c[body];
                const std::size_t height = u16(body + 1), width = u16(body + 3);
                if (c[body + 5] != 1 || precision < 2 || precision > 16 ||
                    static_cast<int>(precision) > bits_allocated ||
                    height != static_cast<std::size_t>(rows) || width != static_cast<std::size_t>(columns))
                    return false;
                if (!ls && marker != 0xC3 && precision != 8 && precision != 12) return false;
                frame = true;
            } else if (marker == 0xE0) {
                if (length >= 7 && std::memcmp(&c[body], "JFIF\0", 5) == 0 &&
                    (length < 8 || c[body + 5] != 1))
                    return false;
            } else if (marker == 0xEE) {
                if (length >= 14 && std::memcmp(&c[body], "Adobe", 5) == 0 && c[body + 11] > 2) return false;
            } else if ((ls ? marker != 0xF8 : (marker != 0xC4 && marker != 0xDB)) && marker != 0xDD &&
                       marker != 0xFE && !(marker >= 0xE1 && marker <= 0xEF)) {
                return false;
            }
            at += 2 + length;
        }
    }

    // The compressed frame's header agrees with the DICOM header, for the codecs whose checks GDCM lacks.
    bool frame_fits(const std::string& syntax, Index rows, Index columns, int samples,
                    int bits_allocated) const {
        const bool jpeg2000 = syntax == "1.2.840.10008.1.2.4.90" || syntax == "1.2.840.10008.1.2.4.91" ||
                              syntax == "1.2.840.10008.1.2.4.92" || syntax == "1.2.840.10008.1.2.4.93";
        const bool jpeg = syntax == "1.2.840.10008.1.2.4.50" || syntax == "1.2.840.10008.1.2.4.51" ||
                          syntax == "1.2.840.10008.1.2.4.57" || syntax == "1.2.840.10008.1.2.4.70";
        const bool jpeg_ls = syntax == "1.2.840.10008.1.2.4.80" || syntax == "1.2.840.10008.1.2.4.81";
        if (!jpeg2000 && !jpeg && !jpeg_ls) return true;
        if (fragments_.size() < 2) return true;  // no fragment: GDCM refuses it
        const std::vector<std::uint8_t> frame = joined_fragments();
        if (jpeg2000) return jpeg2000_size_fits(frame, rows, columns, samples, bits_allocated);
        const std::vector<std::uint8_t> first(bytes_ + fragments_[1].first,
                                              bytes_ + fragments_[1].first + fragments_[1].second);
        return samples == 1 && jpeg_header_fits(frame, rows, columns, bits_allocated, jpeg_ls) &&
               jpeg_header_fits(first, rows, columns, bits_allocated, jpeg_ls);
    }

  private:
    static constexpr std::uint32_t undefined = 0xFFFFFFFFu;

    const TopElement* find(std::uint32_t tag) const {
        for (const TopElement& e : top_)
            if (e.tag == tag) return &e;
        return nullptr;
    }

    // The image pixel module as vit3d and GDCM's pixel format can take it (GDCM asserts on the others).
    void check_image_attributes() const {
        const auto require = [&](bool ok, const std::string& what) {
            if (!ok) throw io_error(message(where_, "expected ", what));
        };
        const Index rows = us(0x0010), columns = us(0x0011), samples = us(0x0002), bits = us(0x0100),
                    stored = us(0x0101), high = us(0x0102), representation = us(0x0103);
        require(rows >= 1 && columns >= 1,
                message("Rows (0028,0010) and Columns (0028,0011) >= 1, got ", rows, " and ", columns));
        require(samples == 1 || samples == 3, message("SamplesPerPixel (0028,0002) 1 or 3, got ", samples));
        require(bits == 8 || bits == 16 || bits == 32,
                message("BitsAllocated (0028,0100) 8, 16 or 32, got ", bits));
        require(
            stored >= 1 && stored <= bits && high == stored - 1,
            message("1 <= BitsStored (0028,0101) <= BitsAllocated and HighBit (0028,0102) = BitsStored - 1, "
                    "got BitsStored ",
                    stored, ", HighBit ", high, ", BitsAllocated ", bits));
        require(representation == 0 || representation == 1,
                message("PixelRepresentation (0028,0103) 0 or 1, got ", representation));
        const Index planar = us(0x0006);
        require(planar == -1 || planar == 0 || planar == 1,
                message("PlanarConfiguration (0028,0006) 0 or 1, got ", planar));
        static const char* const photometrics[] = {"MONOCHROME1",  "MONOCHROME2", "RGB",    "YBR_FULL",
                                                   "YBR_FULL_422", "YBR_ICT",     "YBR_RCT"};
        const std::string photometric = text(0x00280004u);
        require(std::find(std::begin(photometrics), std::end(photometrics), photometric) !=
                    std::end(photometrics),
                message("PhotometricInterpretation (0028,0004) MONOCHROME1, MONOCHROME2, RGB or YBR_*, got ",
                        detail::quoted(photometric)));
        // GDCM reads an MR image's intercept without a slope as slope 0, and asserts that it is not
        // (gdcmImageHelper.cxx:1214, found by fuzzing); the Modality LUT module has both or neither.
        const auto present = [&](std::uint32_t tag) {
            const TopElement* e = find(tag);
            return e != nullptr && e->length != 0;
        };
        require(!present(0x00281052u) || present(0x00281053u),
                "RescaleSlope (0028,1053) with RescaleIntercept (0028,1052), got an intercept alone");
    }
    struct Element {
        std::uint32_t tag;
        char vr[2];
        std::size_t value;     // offset of the value
        std::uint32_t length;  // or `undefined`
    };

    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw io_error(
            message(where_, "malformed DICOM at byte ", at, ": ", what, " (file of ", size_, " bytes)"));
    }
    std::uint16_t u16(std::size_t at, bool big) const {
        return big ? static_cast<std::uint16_t>(bytes_[at] << 8 | bytes_[at + 1])
                   : static_cast<std::uint16_t>(bytes_[at] | bytes_[at + 1] << 8);
    }
    std::uint32_t u32(std::size_t at, bool big) const {
        return big ? static_cast<std::uint32_t>(u16(at, true)) << 16 | u16(at + 2, true)
                   : static_cast<std::uint32_t>(u16(at + 2, false)) << 16 | u16(at, false);
    }
    // The value representations of PS3.5 6.2; GDCM guesses at others, and its guesses can abort.
    static bool known_vr(const char* vr) {
        static const char* const vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL",
                                          "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                          "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                          "UI", "UL", "UN", "UR", "US", "UT", "UV"};
        for (const char* v : vrs)
            if (vr[0] == v[0] && vr[1] == v[1]) return true;
        return false;
    }
    static bool long_length_vr(const char* vr) {
        static const char* const vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                          "SV", "UC", "UN", "UR", "UT", "UV"};
        for (const char* v : vrs)
            if (vr[0] == v[0] && vr[1] == v[1]) return true;
        return false;
    }

    Element header(std::size_t at, bool explicit_vr, bool big, const char* what) const {
        if (size_ - at < 8) fail(at, message("the file ends inside an element's header (", what, ")"));
        Element e{};
        e.tag = static_cast<std::uint32_t>(u16(at, big)) << 16 | u16(at + 2, big);
        const bool item_tag = (e.tag >> 16) == 0xFFFE;  // items and delimiters have no VR in any syntax
        if (!explicit_vr || item_tag) {
            e.length = u32(at + 4, big);
            e.value = at + 8;
            return e;
        }
        e.vr[0] = static_cast<char>(bytes_[at + 4]);
        e.vr[1] = static_cast<char>(bytes_[at + 5]);
        if (!known_vr(e.vr))
            fail(at,
                 message("expected a value representation after tag ",
                         tag_text(static_cast<std::uint16_t>(e.tag >> 16), static_cast<std::uint16_t>(e.tag)),
                         ", got bytes ", +bytes_[at + 4], " ", +bytes_[at + 5]));
        if (long_length_vr(e.vr)) {
            if (size_ - at < 12) fail(at, message("the file ends inside an element's header (", what, ")"));
            e.length = u32(at + 8, big);
            e.value = at + 12;
        } else {
            e.length = u16(at + 6, big);
            e.value = at + 8;
        }
        return e;
    }

    void end_of(const Element& e, const char* what) const {
        if (e.length != undefined && e.length > size_ - e.value)
            fail(e.value,
                 message("element ",
                         tag_text(static_cast<std::uint16_t>(e.tag >> 16), static_cast<std::uint16_t>(e.tag)),
                         " of ", what, " has ", e.length, " bytes, the file has ", size_ - e.value,
                         " after its header (truncated?)"));
    }

    // The elements from `at` to `end`, or to the delimiter `stop` when end is undefined (size_ then bounds
    // them); returns the offset after the last one (after the delimiter).
    std::size_t walk(std::size_t at, std::size_t end, bool explicit_vr, bool big, int depth,
                     std::uint32_t stop = 0) {
        if (depth > 32) fail(at, "sequences nested more than 32 deep");
        while (at < end) {
            const std::size_t start = at;
            const Element e = header(at, explicit_vr, big, "data set");
            if (stop != 0 && e.tag == stop) {
                if (e.length != 0) fail(at, "a delimitation item with a nonzero length");
                return e.value;
            }
            if ((e.tag >> 16) == 0xFFFE) fail(at, "an item or delimiter outside a sequence");
            if (e.length == undefined) {
                const bool sequence =
                    !explicit_vr || (e.vr[0] == 'S' && e.vr[1] == 'Q') || (e.vr[0] == 'U' && e.vr[1] == 'N');
                if (e.tag == 0x7FE00010 && explicit_vr && !sequence) {
                    at = fragments(e.value, big);
                } else if (sequence) {
                    // UN of undefined length holds implicit VR little endian (PS3.5 6.2.2).
                    const bool unknown = explicit_vr && e.vr[0] == 'U';
                    at = items(e.value, size_, unknown ? false : explicit_vr, unknown ? false : big,
                               depth + 1, true);
                } else {
                    fail(at, "an undefined length on an element that is not a sequence or pixel data");
                }
            } else {
                end_of(e, "the data set");
                const std::size_t value_end = e.value + e.length;
                const bool sequence = explicit_vr ? (e.vr[0] == 'S' && e.vr[1] == 'Q')
                                                  : e.length >= 8 && u32(e.value, big) == 0xFFFEE000u;
                if (sequence) {
                    const std::size_t after = items(e.value, value_end, explicit_vr, big, depth + 1, false);
                    if (after != value_end) fail(after, "a sequence's items do not fill its length");
                }
                at = value_end;
            }
            if (stop == 0 && at > end) fail(at, "an element runs past the end of its container");
            if (depth == 0) top_.push_back({e.tag, start, at, e.value, e.length, {e.vr[0], e.vr[1]}});
        }
        if (stop != 0) fail(at, "the file ends before a delimitation item (truncated?)");
        return at;
    }

    // The items of a sequence, to `end` (defined length) or to the sequence delimiter.
    std::size_t items(std::size_t at, std::size_t end, bool explicit_vr, bool big, int depth,
                      bool undefined_length) {
        while (undefined_length || at < end) {
            if (undefined_length && at >= size_) fail(at, "the file ends inside a sequence (truncated?)");
            const Element item = header(at, false, big, "sequence item");
            if (undefined_length && item.tag == 0xFFFEE0DDu) {
                if (item.length != 0) fail(at, "a sequence delimiter with a nonzero length");
                return item.value;
            }
            if (item.tag != 0xFFFEE000u) fail(at, "expected an item (FFFE,E000) in a sequence");
            if (item.length == undefined) {
                at = walk(item.value, size_, explicit_vr, big, depth, 0xFFFEE00Du);
            } else {
                end_of(item, "a sequence item");
                const std::size_t item_end = item.value + item.length;
                if (item_end > end) fail(at, "an item runs past the end of its sequence");
                walk(item.value, item_end, explicit_vr, big, depth);
                at = item_end;
            }
        }
        return at;
    }

    // GDCM reads the marker segments of a JPEG 2000 codestream (its first fragment, and the frame's
    // fragments joined) up to SOD before openjpeg does, without checking their lengths against the data
    // (gdcmJPEG2000Codec.cxx, parsej2k_imp and parsejp2_imp; a SEGV found by fuzzing): vit3d checks that
    // every segment GDCM steps over fits, and refuses the JP2 file format, which DICOM does not use.
    static bool jpeg2000_markers_fit(const std::uint8_t* p, std::size_t n) {
        if (n < 12) return false;  // GDCM compares the first 12 bytes with the JP2 signature
        if (p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 12) return false;
        std::size_t at = 0;
        while (n - at >= 2) {
            const unsigned marker = static_cast<unsigned>(p[at] << 8 | p[at + 1]);
            at += 2;
            if (marker == 0xFF93) return true;  // SOD: the main header ends
            if ((marker >= 0xFF30 && marker <= 0xFF3F) || marker == 0xFF4F || marker == 0xFFD9 ||
                marker == 0xFF92)
                continue;  // no length
            if (n - at < 2) return true;
            const std::size_t length = static_cast<std::size_t>(p[at] << 8 | p[at + 1]);
            at += 2;
            if (length < 2) return true;                        // GDCM stops there
            if (marker == 0xFF52 && n - at < 10) return false;  // COD: GDCM reads its bytes 4 and 9
            if (length - 2 > n - at) return false;
            at += length - 2;
        }
        return true;
    }

    void check_jpeg2000() const {
        if (fragments_.size() < 2) return;  // GDCM refuses pixel data without a fragment
        const auto [first_at, first_size] = fragments_[1];
        const std::vector<std::uint8_t> frame = joined_fragments();
        if (!jpeg2000_markers_fit(bytes_ + first_at, first_size) ||
            !jpeg2000_markers_fit(frame.data(), frame.size()))
            fail(first_at,
                 "a JPEG 2000 codestream whose marker segments do not fit its fragments (or a JP2 file)");
    }

    // Encapsulated pixel data: the basic offset table and fragments (items of defined length) to the
    // sequence delimiter.
    std::size_t fragments(std::size_t at, bool big) {
        fragments_.clear();
        while (true) {
            const Element item = header(at, false, big, "pixel data fragment");
            if (item.tag == 0xFFFEE0DDu) {
                if (item.length != 0) fail(at, "a sequence delimiter with a nonzero length");
                return item.value;
            }
            if (item.tag != 0xFFFEE000u || item.length == undefined)
                fail(at, "expected a pixel data fragment (FFFE,E000) of defined length");
            end_of(item, "encapsulated pixel data");
            fragments_.emplace_back(item.value, item.length);
            at = item.value + item.length;
        }
    }

    const std::uint8_t* bytes_;
    std::size_t size_;
    const std::string& where_;
    std::vector<std::pair<std::size_t, std::size_t>> fragments_;  // of the last encapsulated pixel data
    std::vector<TopElement> top_;  // the data set's elements, not those in sequences
    std::size_t data_set_ = 0;     // where the data set starts
    std::string media_storage_;    // (0002,0002)
    bool big_ = false;
};

// The numbers of a decimal string (DS) or integer string (IS): values separated by backslashes, each a
// decimal number with optional surrounding spaces and a leading sign. Throws io_error naming the attribute
// for anything else, for a non-finite value, or for a count other than `count` (0: any). An absent
// attribute gives no numbers.
inline std::vector<double> dicom_numbers(const DicomStructure& file, std::uint16_t group,
                                         std::uint16_t element, const char* name, std::size_t count,
                                         const std::string& where) {
    const std::string text = file.text(static_cast<std::uint32_t>(group) << 16 | element);
    std::vector<double> out;
    if (text.empty()) return out;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = std::min(text.find('\\', start), text.size());
        std::string_view item(text.data() + start, end - start);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty() && item.front() == '+') item.remove_prefix(1);
        double value = 0.0;
        const std::from_chars_result parsed = std::from_chars(item.data(), item.data() + item.size(), value);
        if (item.empty() || parsed.ec != std::errc() || parsed.ptr != item.data() + item.size() ||
            !std::isfinite(value))
            throw io_error(message(where, name, " ", tag_text(group, element), " is ", detail::quoted(text),
                                   ": expected decimal numbers separated by backslashes"));
        out.push_back(value);
        if (end == text.size()) break;
        start = end + 1;
    }
    if (count != 0 && out.size() != count)
        throw io_error(message(where, name, " ", tag_text(group, element), " is ", detail::quoted(text),
                               ": expected ", count, " values, got ", out.size()));
    return out;
}

inline std::optional<double> dicom_number(const DicomStructure& file, std::uint16_t group,
                                          std::uint16_t element, const char* name, const std::string& where) {
    const std::vector<double> v = dicom_numbers(file, group, element, name, 1, where);
    return v.empty() ? std::nullopt : std::optional<double>(v[0]);
}

// What vit3d decodes: one frame of one sample per pixel, greyscale. (The series reader refuses the others
// anyway, and GDCM's decoders are least tried on them.)
// The transfer syntaxes whose frames vit3d checks before GDCM decodes them. GDCM's JPEG codec also takes
// the retired JPEG processes (.4.52 to .4.65), whose headers vit3d does not check and on which GDCM asserts
// (a precision of 0 in a .4.55 frame, found by fuzzing); no scanner writes them today.
inline bool decoded_syntax(const std::string& syntax) {
    static const char* const syntaxes[] = {
        "1.2.840.10008.1.2",      "1.2.840.10008.1.2.1",    "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.5",    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"};
    return std::find(std::begin(syntaxes), std::end(syntaxes), syntax) != std::end(syntaxes);
}

inline void check_single_frame_greyscale(const dicom::Slice& s, const std::string& where) {
    if (s.frames != 1)
        throw io_error(message(where, "expected single-frame slices, got a multi-frame image of ", s.frames,
                               " frames (NumberOfFrames), which vit3d does not read"));
    if (s.samples_per_pixel != 1 || (s.photometric != "MONOCHROME1" && s.photometric != "MONOCHROME2"))
        throw io_error(message(
            where, "expected a greyscale image (MONOCHROME1 or MONOCHROME2, 1 sample per pixel), got ",
            detail::quoted(s.photometric), " with ", s.samples_per_pixel,
            " samples per pixel; vit3d does not read colour images"));
}

// The stored values of GDCM's decoded buffer (host byte order) as numbers: masked, or sign-extended, to
// BitsStored, since the bits above HighBit are not part of the value (they may hold overlays).
template <class Raw>
void decode_stored(const char* buffer, std::size_t count, const dicom::Slice& s, std::vector<double>& out) {
    using Unsigned = std::make_unsigned_t<Raw>;
    const int bits = s.bits_stored;
    const std::uint64_t mask = bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << bits) - 1;
    out.resize(count);
    for (std::size_t p = 0; p < count; ++p) {
        Unsigned raw;
        std::memcpy(&raw, buffer + p * sizeof(Raw), sizeof(Raw));
        const std::uint64_t bits_value = static_cast<std::uint64_t>(raw) & mask;
        if (s.is_signed && bits_value >> (bits - 1))
            out[p] = static_cast<double>(static_cast<std::int64_t>(bits_value) -
                                         static_cast<std::int64_t>(std::uint64_t(1) << bits));
        else
            out[p] = static_cast<double>(bits_value);
    }
}

inline dicom::Slice parse_slice(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                bool decode, const std::string& where) {
    if (!has_dicom_magic(bytes, size))
        throw io_error(
            message(where, "not a DICOM file: expected \"DICM\" at byte 128 (DICOM Part 10), got ",
                    size < 132 ? message("a file of ", size, " bytes") : std::string("other bytes")));
    DicomStructure structure(bytes, size, where);
    const std::string syntax = structure.check();
    if (!structure.has_pixel_data()) {
        const std::string sop_class = structure.text(0x00080016u);
        throw io_error(
            message(where, "it has no pixel data (7FE0,0010)",
                    sop_class.empty() ? std::string() : message(", SOP class ", detail::quoted(sop_class)),
                    ": not an image"));
    }
    dicom::Slice s;
    s.source = source;
    s.series_uid = structure.text(0x0020000Eu);
    if (s.series_uid.empty())
        throw io_error(message(where,
                               "expected a SeriesInstanceUID (0020,000E), which every DICOM image has, "
                               "got none"));
    s.study_uid = structure.text(0x0020000Du);
    s.sop_instance_uid = structure.text(0x00080018u);
    s.sop_class_uid = structure.text(0x00080016u);
    s.frame_of_reference_uid = structure.text(0x00200052u);
    s.modality = structure.text(0x00080060u);
    s.series_description = structure.text(0x0008103Eu);
    s.transfer_syntax = syntax;
    s.instance_number = dicom_number(structure, 0x0020, 0x0013, "InstanceNumber", where);
    // The image pixel module, which check() has validated.
    s.rows = structure.us(0x0010);
    s.columns = structure.us(0x0011);
    const std::optional<double> frames = dicom_number(structure, 0x0028, 0x0008, "NumberOfFrames", where);
    if (frames && (*frames < 1 || *frames != std::floor(*frames) || *frames > 1e9))
        throw io_error(
            message(where, "NumberOfFrames (0028,0008) is ", *frames, ", expected an integer >= 1"));
    s.frames = frames ? static_cast<Index>(*frames) : 1;
    s.samples_per_pixel = static_cast<int>(structure.us(0x0002));
    s.bits_allocated = static_cast<int>(structure.us(0x0100));
    s.bits_stored = static_cast<int>(structure.us(0x0101));
    s.high_bit = static_cast<int>(structure.us(0x0102));
    s.is_signed = structure.us(0x0103) == 1;
    s.photometric = structure.text(0x00280004u);

    s.position = dicom_numbers(structure, 0x0020, 0x0032, "ImagePositionPatient", 3, where);
    s.orientation = dicom_numbers(structure, 0x0020, 0x0037, "ImageOrientationPatient", 6, where);
    s.pixel_spacing = dicom_numbers(structure, 0x0028, 0x0030, "PixelSpacing", 2, where);
    s.slice_thickness = dicom_number(structure, 0x0018, 0x0050, "SliceThickness", where);
    s.spacing_between_slices = dicom_number(structure, 0x0018, 0x0088, "SpacingBetweenSlices", where);
    const std::optional<double> slope = dicom_number(structure, 0x0028, 0x1053, "RescaleSlope", where);
    const std::optional<double> intercept =
        dicom_number(structure, 0x0028, 0x1052, "RescaleIntercept", where);
    s.has_rescale = slope || intercept;
    s.rescale_slope = slope.value_or(1.0);
    s.rescale_intercept = intercept.value_or(0.0);
    if (s.rescale_slope == 0.0)
        throw io_error(message(where, "RescaleSlope (0028,1053) is 0, expected a nonzero slope"));
    s.window_center = dicom_numbers(structure, 0x0028, 0x1050, "WindowCenter", 0, where);
    s.window_width = dicom_numbers(structure, 0x0028, 0x1051, "WindowWidth", 0, where);
    if (!decode) return s;

    // Decoding, by GDCM: only what vit3d reads (GDCM's decoders are least tried on the rest), and only
    // once the compressed frame's header has been checked against the image attributes.
    check_single_frame_greyscale(s, where);
    if (!decoded_syntax(syntax))
        throw io_error(
            message(where, "transfer syntax ", detail::quoted(syntax),
                    " is not read; expected uncompressed, RLE, JPEG baseline, extended or lossless "
                    "(.4.50, .4.51, .4.57, .4.70), JPEG-LS or JPEG 2000"));
    if (!structure.frame_fits(syntax, s.rows, s.columns, s.samples_per_pixel, s.bits_allocated))
        throw io_error(message(where, "the compressed image's header (transfer syntax ",
                               detail::quoted(syntax), ") does not match Rows ", s.rows, ", Columns ",
                               s.columns, ", SamplesPerPixel ", s.samples_per_pixel, " and BitsAllocated ",
                               s.bits_allocated, ", or holds what GDCM cannot decode safely"));
    // GDCM's image reader asserts on a file whose media storage SOP class it knows as something other than
    // an image (found by fuzzing); it reads the class from (0002,0002), else from (0008,0016).
    const std::string& media_class =
        structure.media_storage().empty() ? s.sop_class_uid : structure.media_storage();
    if (!gdcm::MediaStorage::IsImage(gdcm::MediaStorage::GetMSType(media_class.c_str())))
        throw io_error(message(where, "SOP class ", detail::quoted(media_class),
                               " is not an image storage class GDCM decodes"));
    // GDCM asserts on encapsulated pixel data with no fragment after the offset table (found by fuzzing).
    const bool native =
        syntax == "1.2.840.10008.1.2" || syntax == "1.2.840.10008.1.2.1" || syntax == "1.2.840.10008.1.2.2";
    if (native != structure.native_pixel_length().has_value())
        throw io_error(message(where, "the pixel data (7FE0,0010) is ", native ? "encapsulated" : "native",
                               ", expected it ", native ? "native" : "encapsulated", " in transfer syntax ",
                               detail::quoted(syntax)));
    if (!native && structure.fragment_items() < 2)
        throw io_error(message(where,
                               "the encapsulated pixel data (7FE0,0010) has no fragment after its offset "
                               "table, expected one or more"));
    // GDCM copies a native frame's expected size from the element whatever its length (reading past it).
    const std::uint64_t frame_bytes = static_cast<std::uint64_t>(s.rows) *
                                      static_cast<std::uint64_t>(s.columns) *
                                      static_cast<std::uint64_t>(s.bits_allocated / 8);
    const std::optional<std::uint64_t> native_length = structure.native_pixel_length();
    if (native_length && *native_length < frame_bytes)
        throw io_error(message(where, "the pixel data (7FE0,0010) holds ", *native_length,
                               " bytes, expected ", frame_bytes, " (", s.rows, " rows x ", s.columns,
                               " columns of ", s.bits_allocated, " bits; truncated?)"));
    quiet_gdcm();
    const std::vector<std::uint8_t> for_gdcm = structure.for_gdcm();
    MemoryStreamBuf buffer(for_gdcm.data(), for_gdcm.size());
    std::istream stream(&buffer);
    gdcm::ImageReader reader;
    reader.SetStream(stream);
    bool read = false;
    try {
        read = reader.Read();
    } catch (const std::exception& e) {
        throw io_error(message(where, "GDCM cannot read it: ", e.what()));
    }
    if (!read) throw io_error(message(where, "GDCM cannot read its image (pixel data or image attributes)"));
    const gdcm::Image& image = reader.GetImage();
    const gdcm::PixelFormat& format = image.GetPixelFormat();
    if (image.GetNumberOfDimensions() != 2 || image.GetDimension(0) != static_cast<unsigned>(s.columns) ||
        image.GetDimension(1) != static_cast<unsigned>(s.rows) || format.GetSamplesPerPixel() != 1 ||
        format.GetBitsAllocated() != s.bits_allocated ||
        format.GetPixelRepresentation() != (s.is_signed ? 1 : 0))
        throw io_error(message(where, "GDCM reads the image as ", image.GetNumberOfDimensions(),
                               " dimensions of ", image.GetDimension(0), " x ", image.GetDimension(1), ", ",
                               format.GetSamplesPerPixel(), " sample(s) of ", format.GetBitsAllocated(),
                               " bits, pixel representation ", format.GetPixelRepresentation(),
                               "; the attributes say ", s.columns, " x ", s.rows, ", 1 sample of ",
                               s.bits_allocated, " bits, pixel representation ", s.is_signed ? 1 : 0));

    // What the decoder supports: whole bytes per sample, the value in the low bits.
    if (s.bits_allocated != 8 && s.bits_allocated != 16 && s.bits_allocated != 32)
        throw io_error(message(where, "BitsAllocated is ", s.bits_allocated, ", expected 8, 16 or 32"));
    if (s.bits_stored < 1 || s.bits_stored > s.bits_allocated || s.high_bit != s.bits_stored - 1)
        throw io_error(message(where, "BitsStored ", s.bits_stored, " and HighBit ", s.high_bit,
                               " do not fit BitsAllocated ", s.bits_allocated,
                               ": expected 1 <= BitsStored <= BitsAllocated and HighBit = BitsStored - 1"));
    const std::uint64_t count = static_cast<std::uint64_t>(s.rows) * static_cast<std::uint64_t>(s.columns) *
                                static_cast<std::uint64_t>(s.frames) *
                                static_cast<std::uint64_t>(s.samples_per_pixel);
    const std::uint64_t expected = count * static_cast<std::uint64_t>(s.bits_allocated / 8);
    const unsigned long length = image.GetBufferLength();
    if (count == 0 || length != expected)
        throw io_error(message(where, "expected ", s.rows, " rows x ", s.columns, " columns x ", s.frames,
                               " frame(s) x ", s.samples_per_pixel, " sample(s) of ", s.bits_allocated,
                               " bits (", expected, " bytes), GDCM's decoded image has ", length, " bytes"));
    if (expected > (std::uint64_t(1) << 34))
        throw io_error(message(where, "the image has ", expected, " bytes, more than vit3d reads (16 GiB)"));
    std::vector<char> decoded(static_cast<std::size_t>(expected));
    bool ok = false;
    try {
        ok = image.GetBuffer(decoded.data());
    } catch (const std::exception& e) {
        throw io_error(message(where, "GDCM cannot decode the pixel data (transfer syntax ",
                               detail::quoted(s.transfer_syntax), "): ", e.what()));
    }
    if (!ok)
        throw io_error(message(where, "GDCM cannot decode the pixel data (transfer syntax ",
                               detail::quoted(s.transfer_syntax), "): corrupt, truncated or unsupported"));
    const auto n = static_cast<std::size_t>(count);
    if (s.bits_allocated == 8)
        decode_stored<std::uint8_t>(decoded.data(), n, s, s.pixels);
    else if (s.bits_allocated == 16)
        decode_stored<std::uint16_t>(decoded.data(), n, s, s.pixels);
    else
        decode_stored<std::uint32_t>(decoded.data(), n, s, s.pixels);
    return s;
}

}  // namespace vit3d::detail

namespace vit3d::dicom {

// Parses one DICOM file held in memory: its header, and with decode = true its pixels (decoded by GDCM).
// Throws io_error naming `source_name` for a file that is not DICOM Part 10, that GDCM cannot read, that has
// no image, or whose attributes are malformed.
inline Slice parse_slice(const std::uint8_t* bytes, std::size_t size,
                         const std::string& source_name = "<memory>", bool decode = true) {
    return detail::parse_slice(
        bytes, size, source_name, decode,
        message("vit3d::dicom::parse_slice(", detail::quoted_path(source_name), "): "));
}

}  // namespace vit3d::dicom
