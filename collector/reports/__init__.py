"""The footfall report and the merge of several sensors of one store."""
