/// libFuzzer's driver, entered from each harness's `<Name>_main` (SwiftPM links an executable's entry
/// point as `<module>_main`; libFuzzer's own `main` is then never pulled from its archive).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

public enum Fuzz {
    nonisolated(unsafe) static var body: (([UInt8]) -> Void)?

    /// Runs libFuzzer with `argv`, calling `test` with each input's bytes.
    public static func run(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ test: @escaping ([UInt8]) -> Void) -> CInt {
        body = test
        var count = argc
        var args = argv
        return LLVMFuzzerRunDriver(&count, &args) { data, size in
            let bytes = data.map { [UInt8](UnsafeBufferPointer(start: $0, count: size)) } ?? []
            Fuzz.body?(bytes)
            return 0
        }
    }
}
