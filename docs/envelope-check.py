#!/usr/bin/env python3
"""An independent implementation of the Tessera envelope format (version 1), in Python with
`cryptography`, written from docs/envelope.md only.

    python3 docs/envelope-check.py docs/envelope-vector.json

decrypts the vector's message with its data key and checks the plaintext, then encrypts the
plaintext again with the vector's message id and checks that the message is reproduced byte
for byte. Prints "ok" and exits 0, or names the first difference and exits 1.
"""

import json
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
KEY_LABEL = b"tessera/envelope/v1/key"
HEADER_LABEL = b"tessera/envelope/v1/header"
FRAME_LABEL = b"tessera/envelope/v1/frame"
REGULAR, FINAL = 0, 1


def message_key(data_key, message_id):
    return AESGCM(HKDF(hashes.SHA256(), 32, message_id, KEY_LABEL).derive(data_key))


def nonce(number):
    return b"\0\0\0\0" + struct.pack(">Q", number)


def frame_aad(message_id, number, kind):
    return FRAME_LABEL + message_id + struct.pack(">QB", number, kind)


def field(value):
    return struct.pack(">H", len(value)) + value


def header_fields(message_id, frame_size, key_id, context, wrapped_key):
    out = bytes([VERSION]) + message_id + struct.pack(">I", frame_size) + field(key_id.encode())
    out += struct.pack(">H", len(context))
    for k in sorted(context, key=lambda s: s.encode()):
        out += field(k.encode()) + field(context[k].encode())
    return out + field(wrapped_key)


def encrypt(data_key, message_id, frame_size, key_id, context, wrapped_key, plaintext):
    aead = message_key(data_key, message_id)
    head = header_fields(message_id, frame_size, key_id, context, wrapped_key)
    out = head + aead.encrypt(nonce(0), b"", HEADER_LABEL + head)
    number, offset = 1, 0
    while True:
        chunk = plaintext[offset:offset + frame_size]
        kind = REGULAR if len(chunk) == frame_size else FINAL
        sealed = aead.encrypt(nonce(number), chunk, frame_aad(message_id, number, kind))
        out += bytes([kind]) + (struct.pack(">I", len(chunk)) if kind == FINAL else b"") + sealed
        if kind == FINAL:
            return out
        number, offset = number + 1, offset + frame_size


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def field(self):
        return self.take(self.u16())


def decrypt(data_key, message, context):
    r = Reader(message)
    if r.take(1)[0] != VERSION:
        raise ValueError("unsupported version")
    message_id = r.take(32)
    (frame_size,) = struct.unpack(">I", r.take(4))
    key_id = r.field().decode()
    found = {}
    for _ in range(r.u16()):
        k = r.field().decode()
        found[k] = r.field().decode()
    r.field()  # the wrapped data key: unwrapped by Tessera's Decrypt, given here in clear
    head = message[:r.pos]
    tag = r.take(16)
    if found != context:
        raise ValueError("encryption context mismatch")
    aead = message_key(data_key, message_id)
    aead.decrypt(nonce(0), tag, HEADER_LABEL + head)
    plaintext, number = b"", 1
    while True:
        kind = r.take(1)[0]
        if kind == REGULAR:
            length = frame_size
        elif kind == FINAL:
            (length,) = struct.unpack(">I", r.take(4))
            if length >= frame_size:
                raise ValueError("final frame too long")
        else:
            raise ValueError("unknown frame kind")
        body = r.take(length + 16)
        plaintext += aead.decrypt(nonce(number), body, frame_aad(message_id, number, kind))
        if kind == FINAL:
            if r.pos != len(message):
                raise ValueError("trailing data")
            return key_id, plaintext
        number += 1


def main(path):
    with open(path) as f:
        v = json.load(f)
    data_key, message = bytes.fromhex(v["data_key"]), bytes.fromhex(v["message"])
    plaintext = bytes.fromhex(v["plaintext"])
    try:
        key_id, got = decrypt(data_key, message, v["context"])
    except (InvalidTag, ValueError) as e:
        print(f"decryption failed: {e!r}")
        return 1
    if got != plaintext or key_id != v["key_id"]:
        print("decrypted plaintext or key id differs from the vector")
        return 1
    again = encrypt(data_key, bytes.fromhex(v["message_id"]), v["frame_size"], v["key_id"],
                    v["context"], bytes.fromhex(v["wrapped_key"]), plaintext)
    if again != message:
        print("re-encryption differs from the vector's message")
        return 1
    try:
        decrypt(data_key, message, dict(v["context"], tenant="other"))
        print("another context was accepted")
        return 1
    except ValueError:
        pass
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
