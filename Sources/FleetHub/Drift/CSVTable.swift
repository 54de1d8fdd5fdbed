import Foundation

/// A baseline CSV file: comma-separated, fields optionally in double quotes (`""` for a
/// quote inside), one row per line, a header when the first line is not all numbers.
enum CSVTable {
    static func table(_ data: Data, file: String) throws -> BaselineTable {
        guard let text = String(data: data, encoding: .utf8) else {
            throw RegistryError.invalidBaseline(file, reason: "it is not UTF-8 text")
        }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
            .map { (number: $0.offset + 1, fields: fields(of: $0.element)) }
            .filter { !($0.fields.count == 1 && $0.fields[0].isEmpty) }
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
                    file, reason: "line \(line.number) has \(line.fields.count) field(s), the \(hasHeader ? "header" : "first line") \(names.count)")
            }
            for (index, value) in line.fields.enumerated() {
                if columns[index].strings != nil {
                    columns[index].strings!.append(value)
                } else if let number = Double(value), number.isFinite {
                    columns[index].numbers.append(number)
                } else {
                    throw RegistryError.invalidBaseline(
                        file, reason: "line \(line.number), column \(index + 1) (\(names[index])): '\(value)' is not a number, and the column above it is numeric")
                }
            }
        }
        return BaselineTable(columns: columns, rows: lines.count)
    }

    /// The fields of one line, unquoted and trimmed.
    static func fields(of line: Substring) -> [String] {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = iterator.next()
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else {
                    field.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(field.trimmingCharacters(in: .whitespaces))
                field = ""
            } else {
                field.append(character)
            }
        }
        fields.append(field.trimmingCharacters(in: .whitespaces))
        return fields
    }
}
