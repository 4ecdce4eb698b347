// SPDX-License-Identifier: Apache-2.0
#include "src/sheet.hpp"

#include <cairo-pdf.h>
#include <cairo.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::sheet {
namespace {

// A4 in PostScript points.
constexpr double kPageWidth = 595.28;
constexpr double kPageHeight = 841.89;
constexpr double kMargin = 48;

struct SurfaceDeleter {
    void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct ContextDeleter {
    void operator()(cairo_t* context) const { cairo_destroy(context); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

[[noreturn]] void fail(const std::string& what, cairo_status_t status) {
    throw Error(ErrorKind::failure, fmt::format("cannot draw the share sheet: {}: {}", what,
                                               cairo_status_to_string(status)));
}

void check(cairo_surface_t* surface, const char* what) {
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) fail(what, cairo_surface_status(surface));
}

// Where cairo writes a PDF or PNG: straight into secret memory.
cairo_status_t append_to(void* closure, const unsigned char* data, unsigned int length) {
    static_cast<SecretBytes*>(closure)->append(data, length);
    return CAIRO_STATUS_SUCCESS;
}

struct PngReader {
    const SecretBytes* png;
    std::size_t offset = 0;
};

cairo_status_t read_from(void* closure, unsigned char* data, unsigned int length) {
    auto* reader = static_cast<PngReader*>(closure);
    if (reader->png->size() - reader->offset < length) return CAIRO_STATUS_READ_ERROR;
    std::memcpy(data, reader->png->data() + reader->offset, length);
    reader->offset += length;
    return CAIRO_STATUS_SUCCESS;
}

Surface load_png(const SecretBytes& png) {
    PngReader reader{&png};
    Surface image(cairo_image_surface_create_from_png_stream(read_from, &reader));
    check(image.get(), "reading the QR code image");
    return image;
}

// The lines of a text, without their newlines.
std::vector<std::string_view> lines_of(const SecretBytes& text) {
    std::vector<std::string_view> lines;
    std::string_view all(reinterpret_cast<const char*>(text.data()), text.size());
    while (!all.empty()) {
        const std::size_t end = all.find('\n');
        lines.push_back(all.substr(0, end));
        if (end == std::string_view::npos) break;
        all.remove_prefix(end + 1);
    }
    return lines;
}

void text_at(cairo_t* cr, double x, double y, const std::string& text) {
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, text.c_str());
}

void font(cairo_t* cr, const char* family, double size, bool bold = false) {
    cairo_select_font_face(cr, family, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

// The QR code scaled to `size` points square, pixels kept sharp (no smoothing: a
// scanner needs crisp module edges).
void draw_qr(cairo_t* cr, cairo_surface_t* qr, double x, double y, double size) {
    const int width = cairo_image_surface_get_width(qr);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, size / width, size / width);
    cairo_set_source_surface(cr, qr, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
}

const char* const kInstructions[] = {
    "Handling",
    "- Keep this page sealed in a tamper-evident envelope, offline, in the custodian's safe.",
    "- Never photograph, scan, copy or type this share except to recover the password.",
    "- Any {k} of the {n} shares of set {set} recover the password; fewer reveal nothing about it.",
    "- To recover: p11vault combine --share FILE ... (type the lines back, or scan the QR code).",
    "- Each data line ends with its checksum: a mistyped line is named on recovery.",
    "- Report a lost, opened or damaged envelope to the key ceremony owner at once.",
};

std::string instruction(std::string_view line, const ShareFacts& facts) {
    return fmt::format(fmt::runtime(line), fmt::arg("k", facts.threshold), fmt::arg("n", facts.count),
                       fmt::arg("set", facts.set_id));
}

std::string html_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

std::string share_fingerprint(const SecretBytes& share_text) {
    const auto digest = ossl::sha256(share_text.data(), share_text.size());
    const std::string hex = ossl::hex(std::vector<std::uint8_t>(digest.begin(), digest.begin() + 16));
    std::string grouped;
    for (std::size_t i = 0; i < hex.size(); i += 4) grouped += (i ? " " : "") + hex.substr(i, 4);
    return grouped;
}

SecretBytes pdf_page(const SecretBytes& share_text, const SecretBytes& qr_png, const ShareFacts& facts) {
    SecretBytes pdf;
    Surface qr = load_png(qr_png);
    {
        Surface page(cairo_pdf_surface_create_for_stream(append_to, &pdf, kPageWidth, kPageHeight));
        check(page.get(), "making the PDF page");
        Context cr(cairo_create(page.get()));
        cairo_set_source_rgb(cr.get(), 0, 0, 0);

        double y = kMargin + 14;
        font(cr.get(), "DejaVu Sans", 18, true);
        text_at(cr.get(), kMargin, y, fmt::format("Password share {} of {}", facts.number, facts.count));
        y += 20;
        font(cr.get(), "DejaVu Sans", 10.5);
        text_at(cr.get(), kMargin, y,
                fmt::format("Set {}  -  any {} of {} shares recover the password  -  made {}", facts.set_id,
                            facts.threshold, facts.count, facts.date));
        y += 14;
        text_at(cr.get(), kMargin, y, "Share fingerprint (SHA-256 of the share text): " + facts.fingerprint);

        const double qr_size = 230;
        y += 12;
        draw_qr(cr.get(), qr.get(), (kPageWidth - qr_size) / 2, y, qr_size);
        y += qr_size + 22;

        font(cr.get(), "DejaVu Sans Mono", 7.8);
        for (std::string_view line : lines_of(share_text)) {
            std::string text(line);  // a share line: wiped once cairo has it
            text_at(cr.get(), kMargin, y, text);
            secure_wipe(text.data(), text.size());
            y += 10.5;
        }

        y += 18;
        font(cr.get(), "DejaVu Sans", 10.5);
        for (const char* role : {"Custodian", "Witness"}) {
            text_at(cr.get(), kMargin, y, role);
            y += 24;
            text_at(cr.get(), kMargin, y, "Name ______________________  Signature ______________________  Date ___________");
            y += 26;
        }

        y += 4;
        for (std::size_t i = 0; i < std::size(kInstructions); ++i) {
            font(cr.get(), "DejaVu Sans", i == 0 ? 11 : 9, i == 0);
            text_at(cr.get(), kMargin, y, instruction(kInstructions[i], facts));
            y += i == 0 ? 15 : 12.5;
        }
        cairo_show_page(cr.get());
        if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) fail("drawing the page", cairo_status(cr.get()));
        cr.reset();
        cairo_surface_finish(page.get());
        check(page.get(), "writing the PDF");
    }
    return pdf;
}

SecretBytes captioned_png(const SecretBytes& qr_png, const ShareFacts& facts) {
    Surface qr = load_png(qr_png);
    const int size = cairo_image_surface_get_width(qr.get());
    const int width = std::max(size, 300);
    const int caption = 46;
    Surface image(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, cairo_image_surface_get_height(qr.get()) + caption));
    check(image.get(), "making the captioned image");
    {
        Context cr(cairo_create(image.get()));
        cairo_set_source_rgb(cr.get(), 1, 1, 1);
        cairo_paint(cr.get());
        cairo_set_source_surface(cr.get(), qr.get(), (width - size) / 2, 0);
        cairo_pattern_set_filter(cairo_get_source(cr.get()), CAIRO_FILTER_NEAREST);
        cairo_paint(cr.get());
        cairo_set_source_rgb(cr.get(), 0, 0, 0);
        const double top = cairo_image_surface_get_height(qr.get());
        font(cr.get(), "DejaVu Sans", 15, true);
        text_at(cr.get(), 12, top + 16, fmt::format("share {} of {}", facts.number, facts.count));
        font(cr.get(), "DejaVu Sans", 12);
        text_at(cr.get(), 12, top + 36, fmt::format("set {}, any {} recover", facts.set_id, facts.threshold));
        if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) fail("drawing the caption", cairo_status(cr.get()));
    }
    SecretBytes png;
    const cairo_status_t status = cairo_surface_write_to_png_stream(image.get(), append_to, &png);
    if (status != CAIRO_STATUS_SUCCESS) fail("writing the captioned image", status);
    return png;
}

SecretBytes html_page(const SecretBytes& share_text, const SecretBytes& qr_png, const ShareFacts& facts) {
    SecretBytes page;
    auto add = [&](std::string_view text) { page.append(text.data(), text.size()); };
    add("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    add(fmt::format("<title>Password share {} of {}, set {}</title>\n", facts.number, facts.count,
                    html_escape(facts.set_id)));
    add("<style>\n"
        "@page { size: A4; margin: 17mm; }\n"
        "body { font-family: 'DejaVu Sans', sans-serif; font-size: 10.5pt; }\n"
        "h1 { font-size: 18pt; margin: 0 0 4pt 0; }\n"
        "img.qr { display: block; width: 81mm; height: 81mm; margin: 4mm auto; image-rendering: pixelated; }\n"
        "pre { font-family: 'DejaVu Sans Mono', monospace; font-size: 7.8pt; }\n"
        ".sign { margin: 6mm 0; } .sign span { display: inline-block; border-bottom: 1px solid #000; "
        "width: 50mm; margin-right: 4mm; }\n"
        "ul { font-size: 9pt; padding-left: 4mm; }\n"
        "</style></head><body>\n");
    add(fmt::format("<h1>Password share {} of {}</h1>\n", facts.number, facts.count));
    add(fmt::format("<p>Set {} &ndash; any {} of {} shares recover the password &ndash; made {}<br>\n",
                    html_escape(facts.set_id), facts.threshold, facts.count, html_escape(facts.date)));
    add("Share fingerprint (SHA-256 of the share text): " + html_escape(facts.fingerprint) + "</p>\n");
    add("<img class=\"qr\" alt=\"QR code of the share\" src=\"data:image/png;base64,");
    {
        SecretBytes encoded(4 * ((qr_png.size() + 2) / 3) + 1);
        const int length = EVP_EncodeBlock(encoded.data(), qr_png.data(), static_cast<int>(qr_png.size()));
        page.append(encoded.data(), static_cast<std::size_t>(length));
    }
    add("\">\n<pre>");
    for (std::string_view line : lines_of(share_text)) {
        std::string escaped = html_escape(line);
        add(escaped);
        add("\n");
        secure_wipe(escaped.data(), escaped.size());
    }
    add("</pre>\n");
    for (const char* role : {"Custodian", "Witness"})
        add(fmt::format("<div class=\"sign\"><b>{}</b><br>Name <span></span> Signature <span></span> Date "
                        "<span style=\"width:25mm\"></span></div>\n",
                        role));
    add(fmt::format("<p><b>{}</b></p>\n<ul>\n", kInstructions[0]));
    for (std::size_t i = 1; i < std::size(kInstructions); ++i)
        add("<li>" + html_escape(instruction(kInstructions[i], facts).substr(2)) + "</li>\n");
    add("</ul>\n</body></html>\n");
    return page;
}

}  // namespace p11vault::sheet
