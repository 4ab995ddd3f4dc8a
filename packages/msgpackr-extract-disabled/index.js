// msgpackr loads its native accelerator inside try/catch and falls back to JavaScript when it is absent.
throw new Error('msgpackr native acceleration is not installed in this build');
