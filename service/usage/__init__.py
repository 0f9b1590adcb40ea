"""Usage metering: a tenant's GPU time, generations and storage, summed from the rows that hold them."""
