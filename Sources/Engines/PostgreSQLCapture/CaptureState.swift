import CaptureKit
import TandemStorage

/// The cluster a capture streams from, remembered across restarts (`capture-<slot>.state`
/// in the spool directory, a `DurableFile`). A different system identifier means a different
/// cluster (restored, rebuilt); a higher timeline means a promoted standby, whose logical slots
/// are not the ones this capture confirmed. Either way positions no longer line up with the DR
/// copy.
///
/// A file that exists but cannot be read or parsed stops capture (`.stateDamaged`): taking it
/// for a first start would record whatever cluster answers now, and the "different cluster"
/// guard above could then never fire.
struct CaptureState: Equatable {
    var systemIdentifier: String
    var timeline: Int

    static func path(directory: String, slot: String) -> String { "\(directory)/capture-\(slot).state" }

    /// nil when there is no file (first start); throws when it exists but cannot be used.
    static func load(directory: String, slot: String) throws(CaptureError) -> CaptureState? {
        try CaptureStateFile(engine: .postgresql, path: path(directory: directory, slot: slot)).read(
            expected: "system_identifier= and timeline= lines",
            hint:
                "Restore it from a backup; if the DR copy is known to match this primary, remove the file and restart (it is recorded again), otherwise re-seed the DR site and remove it."
        ) { record throws(StateRecord.Damage) in
            CaptureState(
                systemIdentifier: try record.require("system_identifier") { $0.isEmpty ? nil : $0 },
                timeline: try record.require("timeline") { Int($0) })
        }
    }

    func save(directory: String, slot: String) throws(CaptureError) {
        try CaptureStateFile(engine: .postgresql, path: Self.path(directory: directory, slot: slot)).write(
            StateRecord([("system_identifier", systemIdentifier), ("timeline", String(timeline))]),
            comment: ["Tandem PostgreSQL capture: the cluster and timeline this slot belongs to."])
    }

    /// Nil when `current` is the same cluster on the same timeline.
    func mismatch(with current: CaptureState) -> String? {
        if current.systemIdentifier != systemIdentifier {
            return
                "the primary is a different cluster (system identifier \(current.systemIdentifier), capture started on \(systemIdentifier))"
        }
        if current.timeline != timeline {
            return "the primary changed timeline (\(timeline) → \(current.timeline)): it was promoted or restored"
        }
        return nil
    }
}
