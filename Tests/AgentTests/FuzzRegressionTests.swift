@testable import Agent
import Foundation
import Testing

/// Inputs deploy/fuzz.sh found that stopped the process; each must now be a clean `ConfigError`.
struct ConfigFuzzRegressionTests {
    static var cases: [URL] {
        let dir = Bundle.module.url(forResource: "Fixtures/fuzz-regressions", withExtension: nil)!
        return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []).filter { $0.pathExtension == "toml" }
    }

    @Test("config files the fuzzer found (toml++ aborted on them) are syntax errors with a position")
    func fuzzFindingsAreErrors() throws {
        #expect(!Self.cases.isEmpty)
        for url in Self.cases {
            let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            #expect(throws: ConfigError.self, "\(url.lastPathComponent)") { _ = try ConfigLoader.parse(text) }
            do { _ = try ConfigLoader.parse(text) } catch {
                #expect(error.key == "(syntax)" && error.reason.contains("line 1, column "), "\(error)")
            }
        }
        // Tabs, CR/LF, non-ASCII text, quoted table names, arrays of tables and multi-line arrays stay legal.
        _ = try ConfigLoader.parse("[gate]\r\n\tcry_threshold = 0.9 # é [`\n[ \"mqtt\" ]\nbroker = \"mqtt://h:1\" # [`\n")
        try TOMLPreflight.check("a = [\n  [1, 2],\n  [ {x = 1} ],\n]\n[[t]]\ns = \"\"\"\n[`\n\"\"\"\n")
    }

    @Test("a closing bracket that does not match its opener is a syntax error (toml++ asserted on '}' in an array)",
          arguments: ["k = [}\n", "k = [ } ]\n", "k = [1, }\n", "k = [#c\n}\n", "k = {a = [}]}\n", "k = [{a = 1]]\n"])
    func mismatchedBrackets(text: String) {
        #expect(throws: ConfigError.self) { _ = try TOMLPreflight.check(text) }
    }

    @Test("a value that starts like a date or a time is refused (toml++ asserted on malformed dates)",
          arguments: ["r=9920-03-0- 3\n", "k = 1979-05-27\n", "k = 07:32:00\n", "k = [1, 1979-05-27]\n", "k = {a = 10:00}\n",
                      "k = [ # c\n 2020-01-01 ]\n"])
    func datesRefused(text: String) {
        #expect(throws: ConfigError.self) { _ = try TOMLPreflight.check(text) }
    }

    @Test("numbers stay legal: exponents, signs, years as integers")
    func numbersLegal() throws {
        try TOMLPreflight.check("a = 1e-5\nb = -12\nc = 2026\nd = [1, -2, 3.5e-3]\ne = {f = 1_000}\ng = 0x1F\n")
    }

    @Test("matching brackets, and brackets inside strings and comments, stay legal")
    func matchedBrackets() throws {
        try TOMLPreflight.check("k = [{a = [1, {b = 2}]}, [ ]]\ns = \"}]\" # ] }\nt = { u = [ \"{\" ] }\n")
    }
}
