"""What leaves lrscope as files: TensorBoard events, imported logs, the report (report/)."""
