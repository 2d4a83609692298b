/// Collapses every run of whitespace (line breaks inside SQL text, libpq's trailing
/// newline and tab-indented continuation lines) into one space and caps the length,
/// so that a server message or a statement stays one greppable log line.
public func singleLine(_ text: String, limit: Int = 1000) -> String {
    var out = ""
    out.reserveCapacity(min(text.utf8.count, limit + 3))
    var pendingSpace = false
    var count = 0
    for ch in text {
        if ch.isWhitespace {
            pendingSpace = true
            continue
        }
        if pendingSpace, count > 0 {
            out.append(" ")
            count += 1
        }
        pendingSpace = false
        out.append(ch)
        count += 1
        if count >= limit {
            out.append("…")
            break
        }
    }
    return out
}
