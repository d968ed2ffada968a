import Features
import Foundation
import Testing

/// .npy files deploy/fuzz.sh found that stopped the process; each must now be an `NPYFile.Error`.
struct NPYFuzzRegressionTests {
    @Test("a header whose shape multiplies past Int.max is refused, and so is one larger than its data")
    func shapeOverflow() throws {
        let url = Bundle.module.url(forResource: "Fixtures/fuzz-regressions/npy-shape-product-overflows", withExtension: "npy")!
        #expect(throws: NPYFile.Error.self) { _ = try NPYFile.decode(try Data(contentsOf: url)) }
        var big = NPYFile.encode(NPYFile.Array(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        let text = String(decoding: big, as: UTF8.self).replacingOccurrences(of: "(2, 3)", with: "(9223372036854775807, 2)")
        big = Data(text.utf8)
        #expect(throws: NPYFile.Error.self) { _ = try NPYFile.decode(big) }
    }
}
