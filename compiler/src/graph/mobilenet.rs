//! The MobileNet v1 constructor (paper Table 1) and its comparison variants.
