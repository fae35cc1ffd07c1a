"""The clinic's face: documents and records in, submissions' status and the patient's record out."""
