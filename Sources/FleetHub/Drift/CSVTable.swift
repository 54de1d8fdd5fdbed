import CSV
import Foundation

/// A baseline CSV file (RFC 4180, read by CSV.swift): a header when the first row is not
/// all numbers; rows are counted from the file's first, header included.
enum CSVTable {
    static func table(_ data: Data, file: String) throws -> BaselineTable {
        guard let text = String(data: data, encoding: .utf8) else {
            throw RegistryError.invalidBaseline(file, reason: "it is not UTF-8 text")
        }
        let reader: CSVReader
        do {
            reader = try CSVReader(string: text, trimFields: true)
        } catch {
            throw RegistryError.invalidBaseline(file, reason: "it does not read as CSV (\(error))")
        }
        var lines: [(number: Int, fields: [String])] = []
        var row = 0
        while let fields = reader.next() {
            row += 1
            if !(fields.count == 1 && fields[0].isEmpty) { lines.append((row, fields)) }
        }
        if let error = reader.error {
            throw RegistryError.invalidBaseline(file, reason: "it does not read as CSV after row \(row) (\(error))")
        }
        guard let first = lines.first else { throw RegistryError.invalidBaseline(file, reason: "it has no rows") }
        let hasHeader = first.fields.contains { Double($0) == nil }
        let names = hasHeader ? first.fields : first.fields.indices.map(String.init)
        if hasHeader { lines.removeFirst() }
        guard !lines.isEmpty else { throw RegistryError.invalidBaseline(file, reason: "it has a header but no rows") }
        var columns = names.map { BaselineTable.Column(name: $0) }
        // A column is categorical when its first value is not a number; then all of it is.
        for (index, value) in lines[0].fields.enumerated() where index < columns.count && Double(value) == nil {
            columns[index].strings = []
        }
        for line in lines {
            guard line.fields.count == names.count else {
                throw RegistryError.invalidBaseline(
                    file, reason: "row \(line.number) has \(line.fields.count) field(s), the \(hasHeader ? "header" : "first row") \(names.count)")
            }
            for (index, value) in line.fields.enumerated() {
                if columns[index].strings != nil {
                    columns[index].strings!.append(value)
                } else if let number = Double(value), number.isFinite {
                    columns[index].numbers.append(number)
                } else {
                    throw RegistryError.invalidBaseline(
                        file, reason: "row \(line.number), column \(index + 1) (\(names[index])): '\(value)' is not a number, and the column above it is numeric")
                }
            }
        }
        return BaselineTable(columns: columns, rows: lines.count)
    }
}
