//! Checks against the published RFC 6962 test vectors.
//!
//! The leaves, roots and proofs below are the ones of transparency-dev/merkle (formerly in
//! google/trillian and certificate-transparency-go), `proof/verify_test.go`: data only, used here
//! so that our trees agree with every other conforming implementation.

use super::*;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots for tree sizes 1..=8.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path).
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (first size, second size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(text: &str) -> Hash {
    hex::decode(text).unwrap().try_into().unwrap()
}

fn leaf_hashes() -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|leaf| leaf_hash(&hex::decode(leaf).unwrap()))
        .collect()
}

#[test]
fn roots_match_the_published_vectors() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let leaves = leaf_hashes();
    let mut frontier = Frontier::new();
    for size in 1..=8 {
        assert_eq!(
            hex::encode(root(&leaves[..size])),
            ROOTS[size - 1],
            "size {size}"
        );
        frontier.push(leaves[size - 1]);
        assert_eq!(
            hex::encode(frontier.root()),
            ROOTS[size - 1],
            "frontier size {size}"
        );
        let copy = Frontier::from_parts(frontier.size(), &frontier.to_bytes()).unwrap();
        assert_eq!(copy, frontier);
    }
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let leaves = leaf_hashes();
    for (index, size, path) in INCLUSION {
        let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        let tree = &leaves[..size as usize];
        assert_eq!(inclusion_path(tree, index as usize).unwrap(), expected);
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(index, size, &leaves[index as usize], &expected, &root).unwrap();
        // Corruptions the reference suite also tries must all fail.
        assert!(
            verify_inclusion(index + 1, size, &leaves[index as usize], &expected, &root).is_err()
        );
        assert!(
            verify_inclusion(index, size * 2, &leaves[index as usize], &expected, &root).is_err()
        );
        assert!(verify_inclusion(index, size, &[0; 32], &expected, &root).is_err());
        assert!(
            verify_inclusion(index, size, &leaves[index as usize], &expected[1..], &root).is_err()
        );
        let mut longer = expected.clone();
        longer.push(root);
        assert!(verify_inclusion(index, size, &leaves[index as usize], &longer, &root).is_err());
        for i in 0..expected.len() {
            let mut flipped = expected.clone();
            flipped[i][0] ^= 8;
            assert!(
                verify_inclusion(index, size, &leaves[index as usize], &flipped, &root).is_err()
            );
        }
    }
}

#[test]
fn consistency_proofs_match_and_verify() {
    let leaves = leaf_hashes();
    for (first, second, proof) in CONSISTENCY {
        let expected: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        let tree = &leaves[..second as usize];
        assert_eq!(consistency_proof(tree, first as usize).unwrap(), expected);
        let root1 = h(ROOTS[first as usize - 1]);
        let root2 = h(ROOTS[second as usize - 1]);
        verify_consistency(first, second, &expected, &root1, &root2).unwrap();
        assert!(verify_consistency(first, second, &expected, &root2, &root1).is_err());
        assert!(verify_consistency(first + 1, second, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first, second, &[], &root1, &root2).is_err());
        assert!(verify_consistency(first, second, &expected[1..], &root1, &root2).is_err());
        for i in 0..expected.len() {
            let mut flipped = expected.clone();
            flipped[i][0] ^= 16;
            assert!(verify_consistency(first, second, &flipped, &root1, &root2).is_err());
        }
    }
}

#[test]
fn every_proof_in_larger_trees_verifies() {
    let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let tree_root = root(tree);
        for index in 0..size {
            let path = inclusion_path(tree, index).unwrap();
            verify_inclusion(index as u64, size as u64, &tree[index], &path, &tree_root).unwrap();
        }
        for first in 0..=size {
            let proof = consistency_proof(tree, first).unwrap();
            verify_consistency(
                first as u64,
                size as u64,
                &proof,
                &root(&tree[..first]),
                &tree_root,
            )
            .unwrap();
        }
    }
}
