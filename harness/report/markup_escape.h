// Text placed inside XML (the JUnit report) or HTML (pv report): one escaper for both.
#pragma once

#include <string>
#include <string_view>

namespace pv::harness {

// & < > " ' become entities (&#39; for the apostrophe: valid in XML and in HTML 4 alike);
// control characters other than tab, newline and carriage return, which XML 1.0 forbids
// even as references, become '?'.
std::string markup_escape(std::string_view text);

}  // namespace pv::harness
