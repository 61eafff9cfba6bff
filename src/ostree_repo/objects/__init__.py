"""The OSTree object codec: every object and file of an archive repository, byte-exact.

Each class decodes with ``from_bytes`` (strict: anything that is not exactly what
libostree would write raises :class:`~ostree_repo.errors.InvalidObjectError`) and encodes
with ``to_bytes``; the two round-trip byte for byte. Byte-swapped fields (timestamps,
uid/gid/mode, sizes) are exposed as plain native integers.
"""

from ostree_repo.objects.content import (
    FILE_HEADER_SIGNATURE,
    FILEZ_HEADER_SIGNATURE,
    ContentHasher,
    FileHeader,
    FilezReader,
    content_checksum,
    encode_filez,
    read_filez,
)
from ostree_repo.objects.delta import (
    SUPERBLOCK_SIGNATURE,
    DeltaFallback,
    DeltaPart,
    DeltaPartHeader,
    DeltaSuperblock,
)
from ostree_repo.objects.metadata import COMMIT_SIGNATURE, Commit, DetachedMetadata, Tombstone
from ostree_repo.objects.names import (
    checksum_from_bytes,
    checksum_to_bytes,
    delta_index_path,
    delta_name,
    delta_path,
    from_mbase64,
    is_checksum,
    object_path,
    parse_delta_name,
    parse_object_path,
    to_mbase64,
    validate_checksum,
    validate_collection_id,
    validate_ref,
)
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.summary import SUMMARY_SIGNATURE, DeltaIndex, Summary, SummaryRef
from ostree_repo.objects.tree import (
    DIRMETA_SIGNATURE,
    DIRTREE_SIGNATURE,
    DirMeta,
    DirTree,
    TreeDir,
    TreeFile,
    validate_filename,
)
from ostree_repo.objects.verify import (
    MAX_METADATA_SIZE,
    Verifier,
    find_invalid,
    new_verifier,
    verify_bytes,
    whole_verifier,
)

__all__ = [
    "COMMIT_SIGNATURE",
    "DIRMETA_SIGNATURE",
    "DIRTREE_SIGNATURE",
    "FILEZ_HEADER_SIGNATURE",
    "FILE_HEADER_SIGNATURE",
    "MAX_METADATA_SIZE",
    "SUMMARY_SIGNATURE",
    "SUPERBLOCK_SIGNATURE",
    "Commit",
    "ContentHasher",
    "DeltaFallback",
    "DeltaIndex",
    "DeltaPart",
    "DeltaPartHeader",
    "DeltaSuperblock",
    "DetachedMetadata",
    "DirMeta",
    "DirTree",
    "FileHeader",
    "FilezReader",
    "ObjectType",
    "Summary",
    "SummaryRef",
    "Tombstone",
    "TreeDir",
    "TreeFile",
    "Verifier",
    "checksum_from_bytes",
    "checksum_to_bytes",
    "content_checksum",
    "delta_index_path",
    "delta_name",
    "delta_path",
    "encode_filez",
    "find_invalid",
    "from_mbase64",
    "is_checksum",
    "new_verifier",
    "object_path",
    "parse_delta_name",
    "parse_object_path",
    "read_filez",
    "to_mbase64",
    "validate_checksum",
    "validate_collection_id",
    "validate_filename",
    "validate_ref",
    "verify_bytes",
    "whole_verifier",
]
