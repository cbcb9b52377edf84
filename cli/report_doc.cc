// File: cli/report_doc.cc
//
// The two renderings of a report document: HTML (one page, inline CSS, no
// script) and Markdown.

#include "cli/report_doc.h"

#include <sstream>

namespace hmm::cli::report {
namespace {

// Inline, so the page needs nothing else. Lanes: CPU blue, mm green, device
// amber; results: ok green, bad red, warn amber; a failing trace row is red.
constexpr char kCss[] = R"(body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#1d2329}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .55em;vertical-align:top;text-align:left;
overflow-wrap:break-word}
table.wide{width:100%}table.matrix td{overflow-wrap:anywhere}
table.matrix td:nth-child(2){min-width:14em}table.matrix td:first-child,table.matrix td.ok{overflow-wrap:normal}
th{background:#f3f5f7}
td.ok{color:#116329;font-weight:600}td.bad{color:#b42318;font-weight:700;background:#fdecea}
td.warn{background:#fff4d6;color:#7a4b00;font-weight:600}
table.lanes{width:100%}table.lanes td.lane{width:22%;font-family:ui-monospace,monospace;white-space:pre-wrap}
table.lanes td.cpu{background:#e7f0ff}table.lanes td.mm{background:#e8f6ea}
table.lanes td.device{background:#fff1dc}table.lanes td.idle{background:#fafbfc}
table.lanes td.fail{background:#f9c8c3;font-weight:700}
table.lanes td.res{font-family:ui-monospace,monospace;white-space:pre-wrap}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.7em;overflow-x:auto;font-size:.88em}
details{margin:.4em 0;border:1px solid #d0d7de;border-radius:4px;padding:.3em .7em}
summary{cursor:pointer;font-weight:600}
nav ol{columns:2}.diagram svg{max-width:100%;height:auto}
)";

void RenderHtmlTable(const DocTable& table, std::ostream& out) {
  out << "<table" << (table.style.empty() ? "" : " class=\"" + table.style + "\"")
      << ">\n<thead><tr>";
  for (const std::string& h : table.head) out << "<th>" << HtmlEscape(h) << "</th>";
  out << "</tr></thead>\n<tbody>\n";
  for (const std::vector<Cell>& row : table.rows) {
    out << "<tr>";
    for (const Cell& cell : row) {
      out << "<td" << (cell.style.empty() ? "" : " class=\"" + cell.style + "\"") << ">"
          << HtmlEscape(cell.text) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
}

void RenderHtmlBlock(const Block& b, std::ostream& out) {
  switch (b.kind) {
    case Block::Kind::kHeading: out << "<h3>" << HtmlEscape(b.text) << "</h3>\n"; break;
    case Block::Kind::kParagraph: out << "<p>" << HtmlEscape(b.text) << "</p>\n"; break;
    case Block::Kind::kTable: RenderHtmlTable(b.table, out); break;
    case Block::Kind::kPre: out << "<pre>" << HtmlEscape(b.text) << "</pre>\n"; break;
    case Block::Kind::kSvg: out << "<div class=\"diagram\">\n" << b.text << "\n</div>\n"; break;
    case Block::Kind::kDetailsBegin:
      out << "<details" << (b.open ? " open" : "") << "><summary>" << HtmlEscape(b.text)
          << "</summary>\n";
      break;
    case Block::Kind::kDetailsEnd: out << "</details>\n"; break;
  }
}

// A Markdown table cell: one line, pipes escaped; flagged cells in bold.
std::string MarkdownCell(const Cell& cell) {
  std::string text;
  for (char c : cell.text) {
    if (c == '|') {
      text += "\\|";
    } else if (c == '\n') {
      text += "<br>";
    } else {
      text += c;
    }
  }
  bool flagged = cell.style == "bad" || cell.style == "warn" ||
                 cell.style.find("fail") != std::string::npos;
  return flagged && !text.empty() ? "**" + text + "**" : text;
}

}  // namespace

std::string MarkdownTable(const DocTable& table) {
  std::ostringstream out;
  out << "|";
  for (const std::string& h : table.head) out << " " << h << " |";
  out << "\n|";
  for (size_t i = 0; i < table.head.size(); ++i) out << "---|";
  out << "\n";
  for (const std::vector<Cell>& row : table.rows) {
    out << "|";
    for (const Cell& cell : row) out << " " << MarkdownCell(cell) << " |";
    out << "\n";
  }
  return out.str();
}

namespace {

void RenderMarkdownBlock(const Block& b, std::ostream& out) {
  switch (b.kind) {
    case Block::Kind::kHeading: out << "### " << b.text << "\n\n"; break;
    case Block::Kind::kParagraph: out << b.text << "\n\n"; break;
    case Block::Kind::kTable: out << MarkdownTable(b.table) << "\n"; break;
    case Block::Kind::kPre: out << "```\n" << b.text << (b.text.empty() || b.text.back() != '\n' ? "\n" : "") << "```\n\n"; break;
    case Block::Kind::kSvg: out << b.alt << "\n\n"; break;
    case Block::Kind::kDetailsBegin: out << "#### " << b.text << "\n\n"; break;
    case Block::Kind::kDetailsEnd: break;
  }
}

}  // namespace

namespace {

Block Make(Block::Kind kind, const std::string& text) {
  Block b;
  b.kind = kind;
  b.text = text;
  return b;
}

}  // namespace

Block Heading(const std::string& text) { return Make(Block::Kind::kHeading, text); }
Block Paragraph(const std::string& text) { return Make(Block::Kind::kParagraph, text); }
Block Pre(const std::string& text) { return Make(Block::Kind::kPre, text); }
Block DetailsEnd() { return Make(Block::Kind::kDetailsEnd, ""); }

Block TableBlock(DocTable table) {
  Block b = Make(Block::Kind::kTable, "");
  b.table = std::move(table);
  return b;
}

Block Svg(const std::string& svg, const std::string& markdown_fallback) {
  Block b = Make(Block::Kind::kSvg, svg);
  b.alt = markdown_fallback;
  return b;
}

Block DetailsBegin(const std::string& summary, bool open) {
  Block b = Make(Block::Kind::kDetailsBegin, summary);
  b.open = open;
  return b;
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderHtml(const Document& doc) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>" << HtmlEscape(doc.title) << "</title>\n<style>\n" << kCss
      << "</style>\n</head>\n<body>\n<h1>" << HtmlEscape(doc.title) << "</h1>\n<nav><ol>\n";
  for (const Section& s : doc.sections) {
    out << "<li><a href=\"#" << s.id << "\">" << HtmlEscape(s.title) << "</a></li>\n";
  }
  out << "</ol></nav>\n";
  for (const Section& s : doc.sections) {
    out << "<section id=\"" << s.id << "\">\n<h2>" << HtmlEscape(s.title) << "</h2>\n";
    for (const Block& b : s.blocks) RenderHtmlBlock(b, out);
    out << "</section>\n";
  }
  out << "</body>\n</html>\n";
  return out.str();
}

std::string RenderMarkdown(const Document& doc) {
  std::ostringstream out;
  out << "# " << doc.title << "\n\n";
  for (const Section& s : doc.sections) {
    out << "## " << s.title << "\n\n";
    for (const Block& b : s.blocks) RenderMarkdownBlock(b, out);
  }
  return out.str();
}

}  // namespace hmm::cli::report
