/** The deployment file of the issue's example: a VM, a disk, a 0-db namespace and a public IPv4, signed by its owner, twin 7. */
export const ISSUE_EXAMPLE = {
  id: 42,
  twinId: 7,
  version: 1,
  workloads: [
    { name: "vm1", type: "zmachine", cpu: 2, memory: "4GiB", rootfs: "10GiB" },
    { name: "data", type: "zmount", size: "50GiB" },
    { name: "db", type: "zdb", size: "100GiB", mode: "user" },
    { name: "pub", type: "ipv4" },
  ],
  signatureRequirement: { weightRequired: 1, requests: [{ twinId: 7, weight: 1, required: true }] },
};
