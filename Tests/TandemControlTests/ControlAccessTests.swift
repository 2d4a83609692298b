import TandemControl
import Testing

@Suite("ControlAccess: who may read status and run operator actions")
struct ControlAccessTests {
    static let monitorGID: UInt32 = 5001
    static let operatorGID: UInt32 = 5002
    static let bothPresent = ControlAccess(
        monitorGroup: ControlGroup(name: "tandem-monitor", gid: monitorGID),
        operatorGroup: ControlGroup(name: "tandem-operator", gid: operatorGID))

    static func peer(uid: UInt32 = 1001, gid: UInt32 = 1001, name: String? = "alice", groups: [UInt32] = [])
        -> ControlPeer
    {
        ControlPeer(uid: uid, gid: gid, pid: 4242, userName: name, groupIDs: [gid] + groups)
    }

    enum Who: String, CaseIterable, CustomTestStringConvertible {
        case root, rootInNoGroup, operatorMember, monitorMember, bothGroups, operatorAsPrimaryGroup,
            monitorAsPrimaryGroup, neither
        var testDescription: String { rawValue }

        var peer: ControlPeer {
            switch self {
            case .root: ControlAccessTests.peer(uid: 0, gid: 0, name: "root")
            case .rootInNoGroup: ControlAccessTests.peer(uid: 0, gid: 1234, name: nil)
            case .operatorMember: ControlAccessTests.peer(groups: [ControlAccessTests.operatorGID])
            case .monitorMember: ControlAccessTests.peer(groups: [ControlAccessTests.monitorGID])
            case .bothGroups:
                ControlAccessTests.peer(groups: [ControlAccessTests.monitorGID, ControlAccessTests.operatorGID])
            case .operatorAsPrimaryGroup: ControlAccessTests.peer(gid: ControlAccessTests.operatorGID)
            case .monitorAsPrimaryGroup: ControlAccessTests.peer(gid: ControlAccessTests.monitorGID)
            case .neither: ControlAccessTests.peer(groups: [27, 100])
            }
        }

        /// What the rule allows: root and operators everything, monitors status.
        func allowed(_ level: ControlLevel) -> Bool {
            switch self {
            case .root, .rootInNoGroup, .operatorMember, .bothGroups, .operatorAsPrimaryGroup: true
            case .monitorMember, .monitorAsPrimaryGroup: level == .monitor
            case .neither: false
            }
        }
    }

    @Test("every kind of peer at every level", arguments: Who.allCases, ControlLevel.allCases)
    func rule(who: Who, level: ControlLevel) {
        let decision = Self.bothPresent.decide(who.peer, needs: level, action: "do it")
        if who.allowed(level) {
            #expect(decision == .allowed)
        } else {
            guard case .refused(let reason, let hint) = decision else {
                Issue.record("\(who) at \(level) was allowed")
                return
            }
            #expect(reason.hasPrefix("user alice (uid 1001) may not do it: not in group "))
            #expect(hint.hasPrefix("An administrator can add them: usermod -aG "))
        }
    }

    @Test func neitherGroupReadingStatusNamesBothGroupsAndTheMonitorHint() {
        let decision = Self.bothPresent.decide(Who.neither.peer, needs: .monitor, action: "read status")
        #expect(
            decision
                == .refused(
                    reason: "user alice (uid 1001) may not read status: not in group tandem-monitor or tandem-operator",
                    hint: "An administrator can add them: usermod -aG tandem-monitor alice"))
    }

    @Test func monitorAskingForAnOperatorActionIsToldTheOperatorGroup() {
        let decision = Self.bothPresent.decide(Who.monitorMember.peer, needs: .operator, action: "change the log level")
        #expect(
            decision
                == .refused(
                    reason: "user alice (uid 1001) may not change the log level: not in group tandem-operator",
                    hint: "An administrator can add them: usermod -aG tandem-operator alice"))
    }

    @Test func aUserWithoutANameIsNamedByUID() {
        let nameless = Self.peer(uid: 70000, gid: 70000, name: nil)
        guard case .refused(let reason, let hint) = Self.bothPresent.decide(nameless, needs: .monitor, action: "x")
        else {
            Issue.record("a nameless user in no group was allowed")
            return
        }
        #expect(reason.hasPrefix("uid 70000 may not x:"))
        #expect(hint.hasSuffix("usermod -aG tandem-monitor USER"))
    }

    @Test("groups missing on this system: members of nothing, said so, root still allowed")
    func missingGroups() {
        let none = ControlAccess(
            monitorGroup: ControlGroup(name: "tandem-monitor", gid: nil),
            operatorGroup: ControlGroup(name: "tandem-operator", gid: nil))
        // A peer whose groups hold the gid the group would have had gains nothing from a name
        // that does not resolve.
        let peer = Self.peer(groups: [Self.monitorGID, Self.operatorGID])
        #expect(
            none.decide(peer, needs: .monitor, action: "read status")
                == .refused(
                    reason: "user alice (uid 1001) may not read status: not in group tandem-monitor or tandem-operator "
                        + "(groups tandem-monitor and tandem-operator do not exist on this system)",
                    hint: "An administrator can create the group and add them: groupadd tandem-monitor; "
                        + "usermod -aG tandem-monitor alice"))
        #expect(
            none.decide(peer, needs: .operator, action: "change the log level")
                == .refused(
                    reason: "user alice (uid 1001) may not change the log level: not in group tandem-operator "
                        + "(group tandem-operator does not exist on this system)",
                    hint: "An administrator can create the group and add them: groupadd tandem-operator; "
                        + "usermod -aG tandem-operator alice"))
        #expect(none.decide(Who.root.peer, needs: .operator, action: "x") == .allowed)
    }

    @Test func onlyTheMonitorGroupMissing() {
        let access = ControlAccess(
            monitorGroup: ControlGroup(name: "tandem-monitor", gid: nil),
            operatorGroup: ControlGroup(name: "tandem-operator", gid: Self.operatorGID))
        #expect(access.decide(Who.operatorMember.peer, needs: .monitor, action: "read status") == .allowed)
        guard case .refused(let reason, _) = access.decide(Who.neither.peer, needs: .monitor, action: "read status")
        else {
            Issue.record("allowed")
            return
        }
        #expect(reason.hasSuffix("(group tandem-monitor does not exist on this system)"))
    }
}
