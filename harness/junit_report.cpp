#include "harness/junit_report.h"

#include <cstdlib>
#include <pugixml.hpp>

namespace pv::harness {
namespace {

void collect(const pugi::xml_node& node, std::vector<JunitCase>& out) {
  for (const pugi::xml_node& n : node.children()) {
    const std::string tag = n.name();
    if (tag == "testsuite" || tag == "testsuites") {
      collect(n, out);
      continue;
    }
    if (tag != "testcase") continue;
    JunitCase c;
    c.classname = n.attribute("classname").as_string();
    c.name = n.attribute("name").as_string();
    if (const auto t = n.attribute("time")) c.time_s = std::strtod(t.as_string(), nullptr);
    c.result = "passed";
    for (const pugi::xml_node& ch : n.children()) {
      const std::string ct = ch.name();
      if (ct == "failure" || ct == "error") {
        if (c.result != "failed") {
          c.result = "failed";
          c.message = ch.attribute("message").as_string();
          c.text = ch.text().as_string();
          if (c.message.empty()) c.message = c.text;
        }
      } else if (ct == "skipped" && c.result == "passed") {
        c.result = "skipped";
        c.message = ch.attribute("message").as_string();
        c.text = ch.text().as_string();
        if (c.message.empty()) c.message = c.text;
      } else if (ct == "properties") {
        for (const pugi::xml_node& p : ch.children("property")) {
          c.properties[p.attribute("name").as_string()] = p.attribute("value").as_string();
        }
      } else if (ct == "system-out") {
        c.system_out += ch.text().as_string();
      }
    }
    out.push_back(std::move(c));
  }
}

}  // namespace

std::vector<JunitCase> parse_junit(const std::string& xml, std::string* error) {
  std::vector<JunitCase> out;
  pugi::xml_document doc;
  const pugi::xml_parse_result r = doc.load_buffer(xml.data(), xml.size());
  if (!r) {
    if (error) {
      *error = std::string("not well-formed XML at byte ") + std::to_string(r.offset) + ": " +
               r.description();
    }
    return out;
  }
  const pugi::xml_node top = doc.document_element();
  const std::string tag = top.name();
  if (tag != "testsuites" && tag != "testsuite") {
    if (error) *error = "the root element is <" + tag + ">, not <testsuites> or <testsuite>";
    return out;
  }
  collect(doc, out);
  return out;
}

}  // namespace pv::harness
