# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A qcow2 (version 3) image written strictly in order, for forward-only streams.

``qemu-img convert`` cannot write qcow2 to a pipe, and an HTTP upload wants its
length up front. Given the map of a disk's non-zero clusters, the whole layout
is fixed before the first byte is sent:

    header | L1 table | refcount table | refcount blocks | L2 tables | data clusters

so the exact size is known (Content-Length) and the image is emitted from start
to end. Zero clusters are simply not allocated: a reader sees zeros there.
Every table entry carries the "copied" flag (refcount is exactly one), and the
refcount blocks count every cluster of the file, their own included.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

CLUSTER_BITS = 16
CLUSTER_SIZE = 1 << CLUSTER_BITS  # 64 KiB, qemu's default
REFCOUNT_ORDER = 4  # 16-bit refcounts
REFCOUNT_BYTES = (1 << REFCOUNT_ORDER) // 8
L2_ENTRIES = CLUSTER_SIZE // 8  # one L2 table maps 512 MiB
REFCOUNTS_PER_BLOCK = CLUSTER_SIZE // REFCOUNT_BYTES
COPIED = 1 << 63
HEADER_LENGTH = 104
MAGIC = b"QFI\xfb"


def _clusters(nbytes):
    return (nbytes + CLUSTER_SIZE - 1) // CLUSTER_SIZE


class Qcow2Layout:
    """Where everything goes, for a disk of ``virtual_size`` bytes and the given data clusters.

    ``data_clusters`` is a sorted sequence of guest cluster indexes holding data.
    """

    def __init__(self, virtual_size, data_clusters):
        if virtual_size <= 0:
            raise ValueError("a qcow2 image needs a size above zero")
        self.virtual_size = virtual_size
        self.data_clusters = data_clusters
        self.data_count = len(data_clusters)
        self.l1_size = (_clusters(virtual_size) + L2_ENTRIES - 1) // L2_ENTRIES
        # The L2 tables needed: one per 512 MiB region that holds data.
        regions = []
        for cluster in data_clusters:
            region = cluster // L2_ENTRIES
            if not regions or regions[-1] != region:
                regions.append(region)
        self.l2_regions = regions
        self.l1_clusters = _clusters(self.l1_size * 8)
        # Refcount blocks cover every cluster, themselves and the table included: iterate to a fixpoint.
        fixed = 1 + self.l1_clusters + len(regions) + self.data_count
        blocks, table = 1, 1
        while True:
            total = fixed + table + blocks
            need_blocks = (total + REFCOUNTS_PER_BLOCK - 1) // REFCOUNTS_PER_BLOCK
            need_table = _clusters(need_blocks * 8)
            if (need_blocks, need_table) == (blocks, table):
                break
            blocks, table = need_blocks, need_table
        self.refcount_blocks = blocks
        self.refcount_table_clusters = table
        self.total_clusters = fixed + table + blocks

        self.l1_offset = CLUSTER_SIZE
        self.refcount_table_offset = self.l1_offset + self.l1_clusters * CLUSTER_SIZE
        self.refcount_blocks_offset = self.refcount_table_offset + table * CLUSTER_SIZE
        self.l2_offset = self.refcount_blocks_offset + blocks * CLUSTER_SIZE
        self.data_offset = self.l2_offset + len(regions) * CLUSTER_SIZE
        self.size = self.total_clusters * CLUSTER_SIZE

    def header(self):
        head = struct.pack(
            ">4sIQIIQIIQQIIQQQQII",
            MAGIC, 3, 0, 0, CLUSTER_BITS, self.virtual_size, 0, self.l1_size, self.l1_offset,
            self.refcount_table_offset, self.refcount_table_clusters, 0, 0,
            0, 0, 0, REFCOUNT_ORDER, HEADER_LENGTH,
        )
        head += struct.pack(">II", 0, 0)  # end of header extensions
        return head + b"\0" * (CLUSTER_SIZE - len(head))

    def l1_table(self):
        entries = [0] * self.l1_size
        for index, region in enumerate(self.l2_regions):
            entries[region] = (self.l2_offset + index * CLUSTER_SIZE) | COPIED
        table = struct.pack(">%dQ" % self.l1_size, *entries)
        return table + b"\0" * (self.l1_clusters * CLUSTER_SIZE - len(table))

    def refcount_table(self):
        entries = [self.refcount_blocks_offset + index * CLUSTER_SIZE for index in range(self.refcount_blocks)]
        table = struct.pack(">%dQ" % len(entries), *entries)
        return table + b"\0" * (self.refcount_table_clusters * CLUSTER_SIZE - len(table))

    def refcount_block_chunks(self):
        """The refcount blocks, one cluster at a time: every used cluster has refcount 1."""
        one = struct.pack(">H", 1)
        remaining = self.total_clusters
        for unused in range(self.refcount_blocks):
            used = min(remaining, REFCOUNTS_PER_BLOCK)
            remaining -= used
            yield one * used + b"\0" * ((REFCOUNTS_PER_BLOCK - used) * REFCOUNT_BYTES)

    def l2_table_chunks(self):
        """The L2 tables in order, one cluster each, built one at a time (constant memory)."""
        position = 0  # index into data_clusters; data is laid out in guest order
        for region in self.l2_regions:
            entries = [0] * L2_ENTRIES
            first = region * L2_ENTRIES
            while position < self.data_count and self.data_clusters[position] < first + L2_ENTRIES:
                guest = self.data_clusters[position]
                entries[guest - first] = (self.data_offset + position * CLUSTER_SIZE) | COPIED
                position += 1
            yield struct.pack(">%dQ" % L2_ENTRIES, *entries)

    def metadata_chunks(self):
        """Everything before the data clusters, in order."""
        yield self.header()
        yield self.l1_table()
        yield self.refcount_table()
        yield from self.refcount_block_chunks()
        yield from self.l2_table_chunks()
