// File: cli/report_doc.h
//
// The report as a small document (sections of headings, paragraphs, tables,
// preformatted text, inline SVG and collapsible groups), rendered twice from
// the same value: as one self-contained HTML page (no external resources, no
// script) and as Markdown. `hmmref report` builds the document (report.cc);
// nothing here knows about suites or lemmas.

#ifndef HMMREF_CLI_REPORT_DOC_H_
#define HMMREF_CLI_REPORT_DOC_H_

#include <string>
#include <utility>
#include <vector>

namespace hmm::cli::report {

// A table cell; `style` is a CSS class of the page ("ok", "bad", "warn",
// "lane", "fail-row" on the first cell marks the whole row) or empty.
struct Cell {
  Cell(std::string text = "", std::string style = "")  // NOLINT: {"text"} is a cell
      : text(std::move(text)), style(std::move(style)) {}
  std::string text;
  std::string style;
};

struct DocTable {
  std::vector<std::string> head;
  std::vector<std::vector<Cell>> rows;  // each as wide as `head`
  std::string style;                    // CSS class of the <table>, or empty
};

struct Block {
  enum class Kind {
    kHeading,       // h3 `text`
    kParagraph,     // `text`, escaped
    kTable,         // `table`
    kPre,           // `text` in a <pre> / fenced block
    kSvg,           // `text` is SVG markup (HTML only); `alt` is the Markdown fallback
    kDetailsBegin,  // a collapsible group titled `text`, open when `open`
    kDetailsEnd,
  };
  Kind kind = Kind::kParagraph;
  std::string text;
  std::string alt;
  DocTable table;
  bool open = false;
};

struct Section {
  Section(std::string id, std::string title) : id(std::move(id)), title(std::move(title)) {}
  std::string id;     // the HTML anchor: "invariants"
  std::string title;  // the h2 heading
  std::vector<Block> blocks;
};

struct Document {
  std::string title;
  std::vector<Section> sections;
};

// Helpers to build blocks.
Block Heading(const std::string& text);
Block Paragraph(const std::string& text);
Block TableBlock(DocTable table);
Block Pre(const std::string& text);
Block Svg(const std::string& svg, const std::string& markdown_fallback);
Block DetailsBegin(const std::string& summary, bool open);
Block DetailsEnd();

// "&lt;" for '<' and so on; safe inside text and attribute values.
std::string HtmlEscape(const std::string& text);

// A pipe table: the head, a rule, one line per row ('|' escaped, a newline
// as <br>, a "bad", "warn" or "fail" cell in bold); ends with a newline.
std::string MarkdownTable(const DocTable& table);

// The whole page: starts "<!DOCTYPE html>", a table of contents, then each
// section as <section id=ID><h2>TITLE</h2>...
std::string RenderHtml(const Document& doc);
// The same content: "# TITLE", "## TITLE" per section, pipe tables.
std::string RenderMarkdown(const Document& doc);

}  // namespace hmm::cli::report

#endif  // HMMREF_CLI_REPORT_DOC_H_
