/// What a control request needs of the process that sent it.
public enum ControlLevel: String, Sendable, Equatable, CaseIterable {
    /// Read-only: status. Members of the monitor group (and of the operator group, and root).
    case monitor
    /// Changes the running agent: members of the operator group, and root.
    case `operator`
}

/// Who is on the other end of a control connection, from the kernel (`SO_PEERCRED`: uid, gid,
/// pid) and the user database (name, groups). The kernel's word, not the client's: a client
/// cannot claim to be someone else.
public struct ControlPeer: Sendable, Equatable {
    public var uid: UInt32
    /// The process's primary group.
    public var gid: UInt32
    public var pid: Int32
    /// nil: no user database entry for `uid` (a deleted account, a container's foreign uid).
    public var userName: String?
    /// Every group the user is a member of (`getgrouplist`), the primary one included.
    public var groupIDs: [UInt32]

    public init(uid: UInt32, gid: UInt32, pid: Int32, userName: String?, groupIDs: [UInt32]) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.userName = userName
        self.groupIDs = groupIDs
    }

    /// "user alice (uid 1001)", or "uid 1001" without a name.
    public var described: String {
        userName.map { "user \($0) (uid \(uid))" } ?? "uid \(uid)"
    }

    /// The name a `usermod` hint can use.
    var nameForHint: String { userName ?? "USER" }
}

/// A configured group (`[control] monitor_group` / `operator_group`) as it is on this system:
/// its name, and its gid, or nil when no such group exists here.
public struct ControlGroup: Sendable, Equatable {
    public var name: String
    public var gid: UInt32?

    public init(name: String, gid: UInt32?) {
        self.name = name
        self.gid = gid
    }
}

/// The outcome of an access check: allowed, or refused with the line an operator reads and what
/// to do about it.
public enum AccessDecision: Sendable, Equatable {
    case allowed
    case refused(reason: String, hint: String)
}

/// Who may do what over the control socket. Pure: the peer, the groups as resolved on this
/// system and the level a request needs in; a decision out. The server resolves the groups per
/// connection, so a group created (or a user added to one) while the agent runs counts at once.
///
/// The rule: root is always an operator; members of the operator group may do everything,
/// members of the monitor group may read status. A refusal names the group that would have
/// allowed it, so the message says exactly what an administrator has to change.
public struct ControlAccess: Sendable, Equatable {
    public var monitorGroup: ControlGroup
    public var operatorGroup: ControlGroup

    public init(monitorGroup: ControlGroup, operatorGroup: ControlGroup) {
        self.monitorGroup = monitorGroup
        self.operatorGroup = operatorGroup
    }

    /// Whether `peer` may do `action` (in words: "read status", "change the log level"), which
    /// needs `level`.
    public func decide(_ peer: ControlPeer, needs level: ControlLevel, action: String) -> AccessDecision {
        if peer.uid == 0 || isMember(peer, of: operatorGroup) { return .allowed }
        let who = "\(peer.described) may not \(action)"
        switch level {
        case .monitor:
            if isMember(peer, of: monitorGroup) { return .allowed }
            return .refused(
                reason: "\(who): not in group \(monitorGroup.name) or \(operatorGroup.name)"
                    + missingNote([monitorGroup, operatorGroup]),
                hint: hint(adding: peer, to: monitorGroup))
        case .operator:
            return .refused(
                reason: "\(who): not in group \(operatorGroup.name)" + missingNote([operatorGroup]),
                hint: hint(adding: peer, to: operatorGroup))
        }
    }

    private func isMember(_ peer: ControlPeer, of group: ControlGroup) -> Bool {
        guard let gid = group.gid else { return false }
        return peer.gid == gid || peer.groupIDs.contains(gid)
    }

    /// Says which of the groups do not exist here: the usual cause on a fresh install.
    private func missingNote(_ groups: [ControlGroup]) -> String {
        let missing = groups.filter { $0.gid == nil }.map(\.name)
        switch missing.count {
        case 0: return ""
        case 1: return " (group \(missing[0]) does not exist on this system)"
        default: return " (groups \(missing.joined(separator: " and ")) do not exist on this system)"
        }
    }

    private func hint(adding peer: ControlPeer, to group: ControlGroup) -> String {
        let add = "usermod -aG \(group.name) \(peer.nameForHint)"
        if group.gid == nil {
            return "An administrator can create the group and add them: groupadd \(group.name); \(add)"
        }
        return "An administrator can add them: \(add)"
    }
}
