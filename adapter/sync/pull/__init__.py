"""Pull: the EHR's changes back, page by page, merged as versions, imports or conflicts."""
