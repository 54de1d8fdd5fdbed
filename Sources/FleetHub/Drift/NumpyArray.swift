import Foundation

/// A baseline `.npy` file (numpy's format 1.0–3.0): a little-endian numeric array of
/// shape (rows,) or (rows, features), C order.
enum NumpyArray {
    static func table(_ data: Data, file: String) throws -> BaselineTable {
        let bytes = [UInt8](data)
        func fail(_ reason: String) -> RegistryError { .invalidBaseline(file, reason: reason) }
        guard bytes.count >= 10, bytes[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw fail("it does not start as a .npy file does (\\x93NUMPY); save it with numpy.save")
        }
        let major = bytes[6]
        let headerStart = major == 1 ? 10 : 12
        guard bytes.count >= headerStart else { throw fail("its header is cut short") }
        let headerLength = major == 1
            ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard bytes.count >= headerStart + headerLength,
            let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .utf8)
        else { throw fail("its header is cut short") }
        guard let descr = field("descr", in: header), let shapeText = field("shape", in: header) else {
            throw fail("its header has no descr or shape: \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if field("fortran_order", in: header) == "True" { throw fail("it is in Fortran order; save a C-order array (numpy.ascontiguousarray)") }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard shape.count == 1 || shape.count == 2, shape.allSatisfy({ $0 > 0 }) else {
            throw fail("its shape is (\(shapeText)); expected (rows,) or (rows, features) with at least one row")
        }
        guard let reader = scalarReader(descr) else {
            throw fail("its dtype '\(descr)' is not a little-endian number type (float64, float32, int64, int32, int16, int8, uint8, bool)")
        }
        let rows = shape[0]
        let width = shape.count == 2 ? shape[1] : 1
        let body = headerStart + headerLength
        guard bytes.count >= body + rows * width * reader.size else {
            throw fail("it holds fewer bytes than its shape (\(shapeText)) and dtype '\(descr)' need")
        }
        var columns = (0..<width).map { BaselineTable.Column(name: String($0)) }
        for row in 0..<rows {
            for column in 0..<width {
                let value = reader.read(bytes, body + (row * width + column) * reader.size)
                guard value.isFinite else { throw fail("row \(row), column \(column) is \(value), not a finite number") }
                columns[column].numbers.append(value)
            }
        }
        return BaselineTable(columns: columns, rows: rows)
    }

    /// The text after `'key':` in the header dict, up to its comma (a tuple's parentheses kept out).
    private static func field(_ key: String, in header: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...].trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("(") {
            return rest.dropFirst().prefix { $0 != ")" }.description
        }
        return rest.prefix { $0 != "," && $0 != "}" }.trimmingCharacters(in: CharacterSet(charactersIn: "' "))
    }

    private struct ScalarReader {
        var size: Int
        var read: ([UInt8], Int) -> Double
    }

    private static func scalarReader(_ descr: String) -> ScalarReader? {
        func bits(_ bytes: [UInt8], _ at: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
        }
        switch descr {
        case "<f8": return ScalarReader(size: 8) { Double(bitPattern: bits($0, $1, 8)) }
        case "<f4": return ScalarReader(size: 4) { Double(Float(bitPattern: UInt32(bits($0, $1, 4)))) }
        case "<i8": return ScalarReader(size: 8) { Double(Int64(bitPattern: bits($0, $1, 8))) }
        case "<i4": return ScalarReader(size: 4) { Double(Int32(bitPattern: UInt32(bits($0, $1, 4)))) }
        case "<i2": return ScalarReader(size: 2) { Double(Int16(bitPattern: UInt16(bits($0, $1, 2)))) }
        case "|i1": return ScalarReader(size: 1) { Double(Int8(bitPattern: $0[$1])) }
        case "|u1", "|b1": return ScalarReader(size: 1) { Double($0[$1]) }
        default: return nil
        }
    }
}
