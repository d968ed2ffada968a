/// Refuses the TOML inputs that toml++ (inside TOMLKit) does not report as errors but stops on: it asserts,
/// and in an NDEBUG build *assumes*, that a table header's key starts with a bare-key character or a quote,
/// and it trips over control characters. Both were found by deploy/fuzz.sh (`[\u{1}` and ``[` `` aborted the
/// agent instead of exiting 78), and it asserts on a `}` where an array expects a value (`k = [}`, found the
/// same way): a closing bracket must match the one it closes. Its date/time scanner asserts on malformed
/// dates (`r=9920-03-0- 3`, round 3); no configuration key takes a date or a time, so a value that starts
/// like one (`dddd-` or `dd:`) is refused before toml++ sees it. A tiny scanner, not a parser: it follows strings, comments and value brackets
/// just far enough to know where a line's `[` opens a table header.
enum TOMLPreflight {
    static func check(_ text: String) throws(ConfigError) {
        let s = Array(text.unicodeScalars)
        // toml++ skips a UTF-8 byte-order mark; so does the scan, or a header right after it goes unchecked.
        var i = s.first == "\u{FEFF}" ? 1 : 0, line = 1, column = 1
        var open: [Unicode.Scalar] = []  // brackets/braces open inside a value, innermost last
        var depth: Int { open.count }
        var valueStart = false  // the next token is a value (after `=`, or `[` / `,` inside a value)
        func digit(_ k: Int) -> Bool { k < s.count && ("0"..."9").contains(s[k]) }
        func looksLikeDateOrTime(_ k: Int) -> Bool {
            (digit(k) && digit(k + 1) && digit(k + 2) && digit(k + 3) && k + 4 < s.count && s[k + 4] == "-")
                || (digit(k) && digit(k + 1) && k + 2 < s.count && s[k + 2] == ":")
        }
        var lineStart = true   // only whitespace so far on this line
        func fail(_ why: String) -> ConfigError { ConfigError(key: "(syntax)", reason: "line \(line), column \(column): \(why)") }
        func advance() {
            if s[i] == "\n" { line += 1; column = 1; lineStart = true } else { column += 1 }
            i += 1
        }
        func isControl(_ c: Unicode.Scalar) -> Bool { (c.value < 0x20 && c != "\t" && c != "\r" && c != "\n") || c.value == 0x7F }
        func startsKey(_ c: Unicode.Scalar) -> Bool {
            c.properties.isASCIIHexDigit || ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" || c == "-" || c == "\"" || c == "'"
        }
        while i < s.count {
            let c = s[i]
            if valueStart, c != " ", c != "\t", c != "\n", c != "\r", c != "#" {
                valueStart = false
                if looksLikeDateOrTime(i) { throw fail("dates and times are not values of any configuration key") }
            }
            if isControl(c) { throw fail(String(format: "control character U+%04X is not allowed in TOML", c.value)) }
            switch c {
            case "#":
                while i < s.count, s[i] != "\n" {
                    if isControl(s[i]) { throw fail(String(format: "control character U+%04X is not allowed in TOML", s[i].value)) }
                    advance()
                }
                continue
            case "\"", "'":
                let triple = i + 2 < s.count && s[i + 1] == c && s[i + 2] == c
                let width = triple ? 3 : 1
                for _ in 0..<width { advance() }
                lineStart = false
                while i < s.count {
                    if isControl(s[i]) { throw fail(String(format: "control character U+%04X is not allowed in TOML", s[i].value)) }
                    if c == "\"", s[i] == "\\" { advance(); if i < s.count { advance() }; continue }
                    if s[i] == c, !triple || (i + 2 < s.count && s[i + 1] == c && s[i + 2] == c) {
                        for _ in 0..<width { advance() }
                        break
                    }
                    if !triple, s[i] == "\n" { break }  // an unterminated string: toml++ reports it
                    advance()
                }
                lineStart = false
                continue
            case "[" where depth == 0 && lineStart:
                // A table header `[key]` or `[[key]]`: the key must start like a key.
                advance()
                lineStart = false
                if i < s.count, s[i] == "[" { advance() }
                while i < s.count, s[i] == " " || s[i] == "\t" { advance() }
                guard i < s.count else { throw fail("unterminated table header") }
                if s[i] != "]", !startsKey(s[i]) { throw fail("a table name cannot start with '\(s[i].escaped(asASCII: true))'") }
                continue
            case "[", "{":
                if !lineStart || depth > 0 { open.append(c); valueStart = c == "[" }
            case "]", "}":
                if let innermost = open.last {
                    guard (innermost == "[") == (c == "]") else {
                        throw fail("'\(c)' cannot close the '\(innermost)' opened before it")
                    }
                    open.removeLast()
                }
            case "=" where depth == 0:
                // A value follows: a `[` after it opens an array, not a header.
                advance()
                lineStart = false
                while i < s.count, s[i] == " " || s[i] == "\t" { advance() }
                if i < s.count, s[i] == "[" || s[i] == "{" { open.append(s[i]); valueStart = s[i] == "["; advance() } else { valueStart = true }
                continue
            case "=", ",":
                valueStart = c == "=" || open.last == "["
            default:
                break
            }
            if c != " " && c != "\t" && c != "\n" && c != "\r" { lineStart = false }
            advance()
        }
    }
}
