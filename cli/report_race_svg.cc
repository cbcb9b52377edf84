// File: cli/report_race_svg.cc
//
// LaneSvg (cli/report_race.h): the race counterexample's interleaving drawn
// as inline SVG. A column per actor (its lane, headed by its name), a row per
// scheduler step with a box in the lane of the actor that ran: the yield
// point it resumed at and the one it stopped at, and the operation it was
// in. A gutter at the left numbers the steps and marks each choice a
// schedule byte made with a diamond; blocked parks are dashed and grey; the
// hazard's step is red with a note at the right. No script, no external
// reference (not even an xmlns: the HTML parser places <svg> itself).

#include <algorithm>
#include <sstream>

#include "cli/report_race.h"

namespace hmm::cli::report {
namespace {

constexpr int kGutter = 130;   // step number, choice diamond and byte
constexpr int kHeadH = 30;     // the lanes' names
constexpr int kRowH = 42;
constexpr int kBoxH = 36;
constexpr int kNoteW = 110;    // hazard notes, when there are hazards
constexpr double kCharW = 6.7; // a monospace glyph at 11px
constexpr int kMinLane = 200;
constexpr int kMaxLane = 440;

// Characters as drawn: UTF-8 continuation bytes do not count.
size_t Glyphs(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// `text` cut to `max` glyphs, the last one an ellipsis, on a glyph boundary.
std::string Fit(const std::string& text, size_t max) {
  if (Glyphs(text) <= max) return text;
  size_t glyphs = 0, end = 0;
  for (; end < text.size(); ++end) {
    if ((static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) continue;
    if (++glyphs == max) break;
  }
  return text.substr(0, end) + "…";
}

int LaneWidth(const LaneChart& chart) {
  size_t longest = 0;
  for (const std::string& lane : chart.lanes) longest = std::max(longest, Glyphs(lane));
  for (const LaneRow& row : chart.rows) {
    longest = std::max({longest, Glyphs(row.points), Glyphs(row.op)});
  }
  // The text starts 12 px into the lane and must end 12 px before its end.
  return std::clamp(static_cast<int>(longest * kCharW) + 30, kMinLane, kMaxLane);
}

void Text(std::ostream& out, int x, int y, const std::string& text, const std::string& attrs) {
  out << "<text x=\"" << x << "\" y=\"" << y << "\"" << (attrs.empty() ? "" : " " + attrs)
      << ">" << HtmlEscape(text) << "</text>\n";
}

void Rect(std::ostream& out, int x, int y, int w, int h, const std::string& attrs) {
  out << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h
      << "\" " << attrs << "/>\n";
}

std::string Fill(const std::string& kind) {
  return kind == "device" ? "fill=\"#fff1dc\" stroke=\"#d99a3d\""
                          : "fill=\"#e7f0ff\" stroke=\"#6f9bd8\"";
}

// The lanes: a background column each, a dashed centre line, the name on top.
void DrawLanes(const LaneChart& chart, int lane_w, int height, std::ostream& out) {
  for (size_t i = 0; i < chart.lanes.size(); ++i) {
    const int x = kGutter + static_cast<int>(i) * lane_w;
    Rect(out, x + 2, 0, lane_w - 4, height, "fill=\"#fafbfc\"");
    out << "<line x1=\"" << x + lane_w / 2 << "\" y1=\"" << kHeadH << "\" x2=\""
        << x + lane_w / 2 << "\" y2=\"" << height << "\" stroke=\"#d0d7de\" "
        << "stroke-dasharray=\"3 3\"/>\n";
    Rect(out, x + 4, 4, lane_w - 8, kHeadH - 8, Fill(chart.kinds[i]) + " rx=\"4\"");
    Text(out, x + lane_w / 2, kHeadH - 11, chart.lanes[i],
         "text-anchor=\"middle\" font-weight=\"700\" class=\"lane-name\"");
  }
}

// The step number and, where a schedule byte chose, a diamond and the byte.
void DrawGutter(const LaneRow& row, int y, std::ostream& out) {
  const int mid = y + kBoxH / 2;
  Text(out, 30, mid + 4, std::to_string(row.step), "text-anchor=\"end\" fill=\"#57606a\"");
  if (row.choice.empty()) return;
  out << "<polygon class=\"choice\" points=\"" << 42 << "," << mid - 6 << " " << 48 << ","
      << mid << " " << 42 << "," << mid + 6 << " " << 36 << "," << mid
      << "\" fill=\"#8250df\"><title>" << HtmlEscape("a schedule byte chose: " + row.choice)
      << "</title></polygon>\n";
  Text(out, 54, mid + 4, row.choice, "font-size=\"10\" fill=\"#8250df\"");
}

// A step's box in its actor's lane, with its two lines and a tooltip.
void DrawBox(const LaneChart& chart, const LaneRow& row, int lane_w, int y, std::ostream& out) {
  const bool hazard = !row.hazards.empty();
  const int x = kGutter + static_cast<int>(row.lane) * lane_w + 6;
  std::string style = Fill(row.lane < chart.kinds.size() ? chart.kinds[row.lane] : "cpu");
  if (row.blocked) style = "fill=\"#eef0f2\" stroke=\"#8c959f\" stroke-dasharray=\"5 3\"";
  if (hazard) style = "fill=\"#f9c8c3\" stroke=\"#b42318\" stroke-width=\"2.5\"";
  const std::string lane = row.lane < chart.lanes.size() ? chart.lanes[row.lane] : "?";
  out << "<g class=\"step" << (row.blocked ? " blocked" : "") << (hazard ? " hazard" : "")
      << "\"><title>" << HtmlEscape("step " + std::to_string(row.step) + ", " + lane + ": " +
                                    row.points + (row.op.empty() ? "" : " (" + row.op + ")"))
      << "</title>\n";
  Rect(out, x, y, lane_w - 12, kBoxH, style + " rx=\"4\"");
  const size_t fits = static_cast<size_t>((lane_w - 24) / kCharW);
  Text(out, x + 6, y + 15, Fit(row.points, fits),
       row.blocked ? "fill=\"#57606a\" font-style=\"italic\"" : "");
  Text(out, x + 6, y + 29, Fit(row.op, fits), "font-size=\"10\" fill=\"#57606a\"");
  out << "</g>\n";
}

// A thin line from one step's box to the next one's in another lane: the
// scheduler handing the CPU over.
void DrawHandoff(const LaneRow& from, const LaneRow& to, int lane_w, int y, std::ostream& out) {
  if (from.lane == to.lane) return;
  const int x1 = kGutter + static_cast<int>(from.lane) * lane_w + lane_w / 2;
  const int x2 = kGutter + static_cast<int>(to.lane) * lane_w + lane_w / 2;
  out << "<line x1=\"" << x1 << "\" y1=\"" << y - kRowH + kBoxH << "\" x2=\"" << x2
      << "\" y2=\"" << y << "\" stroke=\"#8c959f\" stroke-width=\"1\"/>\n";
}

void DrawNote(const LaneRow& row, int x, int y, std::ostream& out) {
  std::string note;
  for (size_t h : row.hazards) note += (note.empty() ? "" : ", ") + std::to_string(h + 1);
  Text(out, x + 8, y + kBoxH / 2 + 4, "◀ hazard " + note,
       "fill=\"#b42318\" font-weight=\"700\" class=\"hazard-note\"");
}

}  // namespace

std::string LaneSvg(const LaneChart& chart) {
  const int lane_w = LaneWidth(chart);
  bool hazards = false;
  for (const LaneRow& row : chart.rows) hazards = hazards || !row.hazards.empty();
  const int lanes_end = kGutter + static_cast<int>(chart.lanes.size()) * lane_w;
  const int width = lanes_end + (hazards ? kNoteW : 0);
  const int height = kHeadH + static_cast<int>(chart.rows.size()) * kRowH + 6;
  std::ostringstream out;
  out << "<svg class=\"race-lanes\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"ui-monospace,monospace\" font-size=\"11\" role=\"img\">\n"
      << "<title>" << HtmlEscape("The interleaving: " + std::to_string(chart.rows.size()) +
                                 " steps of " + std::to_string(chart.lanes.size()) + " actors")
      << "</title>\n";
  DrawLanes(chart, lane_w, height, out);
  for (size_t i = 0; i < chart.rows.size(); ++i) {
    const LaneRow& row = chart.rows[i];
    const int y = kHeadH + static_cast<int>(i) * kRowH + 3;
    if (i > 0) DrawHandoff(chart.rows[i - 1], row, lane_w, y, out);
    DrawGutter(row, y, out);
    DrawBox(chart, row, lane_w, y, out);
    if (!row.hazards.empty()) DrawNote(row, lanes_end, y, out);
  }
  out << "</svg>";
  return out.str();
}

}  // namespace hmm::cli::report
