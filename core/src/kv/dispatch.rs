//! From the types a user names to the element types a cache is generic over: one generic
//! function, called with the pair of [`KvElement`]s that a [`KvTypes`] names.

use half::f16;

use super::{BlockQ8_0, Fp8E4M3, KvElement, KvType, KvTypes};

/// A function generic over a cache's key and value element types, for [`with_kv_types`].
pub trait WithKvTypes {
    /// What the function returns.
    type Out;
    /// The function, for keys of `K` and values of `V`.
    fn call<K: KvElement + Send + Sync + 'static, V: KvElement + Send + Sync + 'static>(
        self,
    ) -> Self::Out;
}

/// `f` called with the element types `types` names.
pub fn with_kv_types<F: WithKvTypes>(types: KvTypes, f: F) -> F::Out {
    fn values<K: KvElement + Send + Sync + 'static, F: WithKvTypes>(v: KvType, f: F) -> F::Out {
        match v {
            KvType::F32 => f.call::<K, f32>(),
            KvType::F16 => f.call::<K, f16>(),
            KvType::Q8_0 => f.call::<K, BlockQ8_0>(),
            KvType::Fp8 => f.call::<K, Fp8E4M3>(),
        }
    }
    match types.keys {
        KvType::F32 => values::<f32, F>(types.values, f),
        KvType::F16 => values::<f16, F>(types.values, f),
        KvType::Q8_0 => values::<BlockQ8_0, F>(types.values, f),
        KvType::Fp8 => values::<Fp8E4M3, F>(types.values, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;

    impl WithKvTypes for Names {
        type Out = (KvType, KvType);
        fn call<K: KvElement + Send + Sync + 'static, V: KvElement + Send + Sync + 'static>(
            self,
        ) -> (KvType, KvType) {
            (K::TYPE, V::TYPE)
        }
    }

    #[test]
    fn every_pair_reaches_its_element_types() {
        for keys in KvType::ALL {
            for values in KvType::ALL {
                let types = KvTypes { keys, values };
                assert_eq!(with_kv_types(types, Names), (keys, values));
            }
        }
    }
}
