import TandemCore

/// One logical replication message of PostgreSQL's `pgoutput` plugin, protocol version 2,
/// exactly as the server sent it: no relation lookups, no value interpretation.
///
/// Kept separate from `PgOutputDecoder` so that byte validation (hostile input) and
/// protocol semantics (transaction assembly, relation cache) can be tested on their own.
/// LSNs stay raw `UInt64` here and times stay in PostgreSQL's own epoch: conversion is
/// the decoder's job, so a parse never loses information.
public enum PgOutputMessage: Hashable, Sendable {
    case begin(finalLSN: UInt64, commitTime: Int64, xid: UInt32)
    case commit(flags: UInt8, commitLSN: UInt64, endLSN: UInt64, commitTime: Int64)
    case origin(commitLSN: UInt64, name: String)
    case relation(PgOutputRelationMessage)
    case type(xid: UInt32?, oid: UInt32, namespace: String, name: String)
    case insert(xid: UInt32?, relid: UInt32, new: PgOutputTuple)
    case update(xid: UInt32?, relid: UInt32, old: PgOutputOldTuple?, new: PgOutputTuple)
    case delete(xid: UInt32?, relid: UInt32, old: PgOutputOldTuple)
    case truncate(xid: UInt32?, options: UInt8, relids: [UInt32])
    case message(xid: UInt32?, transactional: Bool, lsn: UInt64, prefix: String, content: [UInt8])
    case streamStart(xid: UInt32, firstSegment: Bool)
    case streamStop
    case streamCommit(xid: UInt32, flags: UInt8, commitLSN: UInt64, endLSN: UInt64, commitTime: Int64)
    case streamAbort(xid: UInt32, subxid: UInt32)

    /// The top-level transaction id a change message carries inside a stream (nil outside).
    public var streamXID: UInt32? {
        switch self {
        case .relation(let r): r.xid
        case .type(let x, _, _, _), .insert(let x, _, _), .update(let x, _, _, _), .delete(let x, _, _),
            .truncate(let x, _, _), .message(let x, _, _, _, _):
            x
        default: nil
        }
    }
}

/// A Relation ('R') message: the shape of a table as the server will send its rows.
public struct PgOutputRelationMessage: Hashable, Sendable {
    public struct Column: Hashable, Sendable {
        /// Bit 1 marks a column that is part of the replica identity (the key).
        public var flags: UInt8
        public var name: String
        public var typeOID: UInt32
        public var typeModifier: Int32

        public init(flags: UInt8, name: String, typeOID: UInt32, typeModifier: Int32) {
            self.flags = flags
            self.name = name
            self.typeOID = typeOID
            self.typeModifier = typeModifier
        }

        public var isKey: Bool { flags & 1 != 0 }
    }

    public var xid: UInt32?
    public var relid: UInt32
    public var namespace: String
    public var name: String
    /// `relreplident`: 'd' default (primary key), 'n' nothing, 'f' full, 'i' index.
    public var replicaIdentity: UInt8
    public var columns: [Column]

    public init(
        xid: UInt32?, relid: UInt32, namespace: String, name: String, replicaIdentity: UInt8,
        columns: [Column]
    ) {
        self.xid = xid
        self.relid = relid
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }
}

/// One column of a TupleData block, in the four forms the protocol defines.
public enum PgOutputDatum: Hashable, Sendable {
    /// 'n'
    case null
    /// 'u': an unchanged TOASTed value the server did not send.
    case unchangedToast
    /// 't': the type's text output.
    case text([UInt8])
    /// 'b': the type's binary send format (only when the subscriber asked for `binary`).
    case binary([UInt8])
}

public typealias PgOutputTuple = [PgOutputDatum]

/// The old row image of an update or delete: 'K' holds only the replica identity
/// columns (others null), 'O' the whole old row (`REPLICA IDENTITY FULL`).
public enum PgOutputOldTuple: Hashable, Sendable {
    case key(PgOutputTuple)
    case oldRow(PgOutputTuple)
}

/// Why a message's bytes were refused. Every case names where, so a corrupt stream
/// can be diagnosed from the error alone.
public enum PgOutputParseError: Error, Hashable, Sendable {
    case empty
    case unknownMessageType(UInt8)
    /// The message ended before `field` (needed `needed` bytes at `offset`).
    case truncated(field: String, offset: Int, needed: Int)
    /// A string had no NUL terminator before the end of the message.
    case unterminatedString(field: String, offset: Int)
    case invalidUTF8(field: String, offset: Int)
    case negativeLength(field: String, offset: Int, length: Int32)
    case negativeCount(field: String, offset: Int, count: Int)
    case unexpectedByte(field: String, offset: Int, byte: UInt8)
    case unknownTupleKind(offset: Int, kind: UInt8)
    /// Bytes left over after a complete message: the framing is not what we think it is.
    case trailingBytes(messageType: UInt8, count: Int)
}
