//! Shape inference: fills every tensor's static shape from the inputs and attributes.
